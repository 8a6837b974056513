package server

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/glimpse-vlm/glimpse/fusion"
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
)

// service implements pb.GlimpseServiceServer.
type service struct {
	pb.UnimplementedGlimpseServiceServer
	s *Server
}

func (svc *service) limits() *pb.Limits {
	c := svc.s.cfg
	return &pb.Limits{
		MaxMessageBytes:     int64(c.MaxMessageBytes),
		MaxImagesPerRequest: int32(c.MaxImagesPerRequest),
		MaxImageBytes:       c.MaxImageBytes,
		MaxImagePixels:      c.MaxImagePixels,
		MaxTextsPerRequest:  int32(c.MaxTexts),
		MaxNewTokens:        int32(c.MaxNewTokens),
		MaxBeams:            int32(c.MaxBeams),
		MaxTextBytes:        int32(c.MaxTextBytes),
	}
}

// ListModels implements pb.GlimpseServiceServer.
func (svc *service) ListModels(ctx context.Context, _ *pb.ListModelsRequest) (*pb.ListModelsResponse, error) {
	def := svc.s.reg.defaultName()
	resp := &pb.ListModelsResponse{DefaultModel: def, Limits: svc.limits()}
	for _, e := range svc.s.reg.all() {
		st, m, info, err := e.snapshot()
		mi := &pb.ModelInfo{Name: e.name, State: st, Default: e.name == def}
		if err != nil {
			mi.Error = err.Error()
		}
		if m != nil {
			mi.Family = info.Family
			mi.Architecture = info.Architecture
			mi.Tasks = tasksOf(m)
			mi.ImageSize = int32(info.ImageSize)
			mi.ImageTokens = int32(info.ImageTokens)
			mi.MaxTextTokens = int32(info.MaxTextLen)
			mi.VocabSize = int32(info.VocabSize)
		}
		resp.Models = append(resp.Models, mi)
	}
	return resp, nil
}

// resolve finds a serving model that can do task.
func (svc *service) resolve(name string, task pb.Task) (*modelEntry, fusion.Model, fusion.Info, error) {
	if name == "" {
		name = svc.s.reg.defaultName()
	}
	e, ok := svc.s.reg.get(name)
	if !ok {
		var names []string
		for _, e := range svc.s.reg.all() {
			names = append(names, e.name)
		}
		return nil, nil, fusion.Info{}, notFound("model", name, "model: no model named %q; served models: %s", name, strings.Join(names, ", "))
	}
	st, m, info, err := e.snapshot()
	switch st {
	case pb.ModelState_MODEL_STATE_LOADING:
		return nil, nil, info, status.Errorf(codes.Unavailable, "model %s is still loading; retry shortly", name)
	case pb.ModelState_MODEL_STATE_NOT_SERVING:
		return nil, nil, info, failedPrecondition("STATE", name, "model %s is not serving: %v", name, err)
	}
	if task != pb.Task_TASK_UNSPECIFIED && !hasTask(m, task) {
		return nil, nil, info, failedPrecondition("TASK", name, "model %s (%s) cannot %s; it can: %s",
			name, info.Architecture, taskVerb(task), taskList(m))
	}
	return e, m, info, nil
}

func hasTask(m fusion.Model, t pb.Task) bool {
	for _, x := range tasksOf(m) {
		if x == t {
			return true
		}
	}
	return false
}

func taskVerb(t pb.Task) string {
	switch t {
	case pb.Task_TASK_CAPTION:
		return "caption"
	case pb.Task_TASK_ANSWER:
		return "answer questions"
	case pb.Task_TASK_MATCH:
		return "match texts to images"
	case pb.Task_TASK_EMBED:
		return "embed"
	}
	return t.String()
}

func taskList(m fusion.Model) string {
	var out []string
	for _, t := range tasksOf(m) {
		out = append(out, taskVerb(t))
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, ", ")
}

// timer accumulates a request's timings.
type timer struct {
	queue, encode, prefill, decode time.Duration
}

func (t *timer) proto() *pb.Timings {
	return &pb.Timings{
		Queue:       durationpb.New(t.queue),
		ImageEncode: durationpb.New(t.encode),
		Prefill:     durationpb.New(t.prefill),
		Decode:      durationpb.New(t.decode),
	}
}

func finishOf(f fusion.FinishReason) pb.FinishReason {
	switch f {
	case fusion.FinishEOS:
		return pb.FinishReason_FINISH_REASON_EOS
	case fusion.FinishLength:
		return pb.FinishReason_FINISH_REASON_LENGTH
	case fusion.FinishStop:
		return pb.FinishReason_FINISH_REASON_STOP
	case fusion.FinishCancelled:
		return pb.FinishReason_FINISH_REASON_CANCELLED
	}
	return pb.FinishReason_FINISH_REASON_UNSPECIFIED
}

func int32s(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

// checkPrompt tokenizes a prompt or question to check it fits the model
// and the server's --max-prompt-tokens.
func (svc *service) checkPrompt(m fusion.Model, info fusion.Info, field, text string) error {
	if text == "" {
		return nil
	}
	ids, err := m.Tokenize(text)
	if err != nil {
		return badInput(field, err)
	}
	if max := svc.s.cfg.MaxPromptTokens; max > 0 && len(ids) > max {
		return invalidArgument(violation(field, "is %d tokens; the limit is %d (server flag --max-prompt-tokens)", len(ids), max))
	}
	if info.MaxTextLen > 0 && len(ids) > info.MaxTextLen {
		return invalidArgument(violation(field, "is %d tokens; this model takes at most %d", len(ids), info.MaxTextLen))
	}
	return nil
}

// genResult is a finished generation with its accounting.
type genResult struct {
	gen   *fusion.Generation
	sha   string
	usage *pb.Usage
	t     timer
}

// runGenerate does the work of Caption, Answer and Generate once the
// request is valid: admission, image state, decoding. onPiece, if not nil,
// receives each decoded token.
func (svc *service) runGenerate(ctx context.Context, e *modelEntry, m fusion.Model, task pb.Task, img *pb.Image, imgField, text string, opts fusion.GenerateOptions, onPiece func(*pb.Piece) error) (*genResult, error) {
	// Generation goes through the model's engine: a bounded queue per
	// model, KV-cache accounting, images encoded in batches, and decoding
	// steps batched with the model's other live requests.
	eng := svc.s.eng.of(e, m)
	release, waited, err := admit(ctx, eng, m, text, opts)
	if err != nil {
		return nil, err
	}
	defer release()
	r := &genResult{t: timer{queue: waited}}
	st, sha, enc, err := svc.s.engineImageState(ctx, eng, e, img, imgField)
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	r.sha, r.t.encode = sha, enc
	start := time.Now()
	var first time.Time
	on := func(tok fusion.Token) error {
		if first.IsZero() {
			first = time.Now()
		}
		if onPiece == nil {
			return nil
		}
		p := &pb.Piece{Text: tok.Text, TokenIds: []int32{int32(tok.ID)}}
		if opts.Logprobs {
			p.Logprobs = []float32{tok.Logprob}
		}
		return onPiece(p)
	}
	var gen *fusion.Generation
	switch task {
	case pb.Task_TASK_CAPTION:
		gen, err = m.(fusion.Captioner).Caption(ctx, st, text, opts, on)
	case pb.Task_TASK_ANSWER:
		gen, err = m.(fusion.Answerer).Answer(ctx, st, text, opts, on)
	default:
		return nil, status.Errorf(codes.Internal, "runGenerate: task %v", task)
	}
	end := time.Now()
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	if first.IsZero() {
		r.t.prefill = end.Sub(start)
	} else {
		r.t.prefill, r.t.decode = first.Sub(start), end.Sub(first)
	}
	if !opts.Logprobs {
		gen.Logprobs = nil
	}
	r.gen = gen
	r.usage = &pb.Usage{ImageTokens: int32(st.Tokens), PromptTokens: int32(gen.PromptTokens), GeneratedTokens: int32(len(gen.TokenIDs))}
	return r, nil
}

// Caption implements pb.GlimpseServiceServer.
func (svc *service) Caption(ctx context.Context, req *pb.CaptionRequest) (*pb.CaptionResponse, error) {
	r, model, err := svc.imageTextGenerate(ctx, req.GetModel(), pb.Task_TASK_CAPTION, req.GetImage(), "prompt", req.GetPrompt(), false, req.GetOptions())
	if err != nil {
		return nil, err
	}
	return &pb.CaptionResponse{
		Text: r.gen.Text, TokenIds: int32s(r.gen.TokenIDs), Logprobs: r.gen.Logprobs,
		FinishReason: finishOf(r.gen.Finish), Usage: r.usage, Timings: r.t.proto(),
		ImageSha256: r.sha, Model: model,
	}, nil
}

// Answer implements pb.GlimpseServiceServer.
func (svc *service) Answer(ctx context.Context, req *pb.AnswerRequest) (*pb.AnswerResponse, error) {
	r, model, err := svc.imageTextGenerate(ctx, req.GetModel(), pb.Task_TASK_ANSWER, req.GetImage(), "question", req.GetQuestion(), true, req.GetOptions())
	if err != nil {
		return nil, err
	}
	return &pb.AnswerResponse{
		Text: r.gen.Text, TokenIds: int32s(r.gen.TokenIDs), Logprobs: r.gen.Logprobs,
		FinishReason: finishOf(r.gen.Finish), Usage: r.usage, Timings: r.t.proto(),
		ImageSha256: r.sha, Model: model,
	}, nil
}

// imageTextGenerate serves the unary generation RPCs (Caption, Answer):
// it validates the image, the text (the request field textField, required
// or not) and the options, resolves the model for task, and generates. It
// returns the result and the name of the model that served it.
func (svc *service) imageTextGenerate(ctx context.Context, model string, task pb.Task, img *pb.Image, textField, text string, required bool, options *pb.GenerationOptions) (*genResult, string, error) {
	v := &validator{cfg: &svc.s.cfg}
	v.image("image", img)
	v.text(textField, text, required)
	opts := v.options("options", options)
	if err := v.err(); err != nil {
		return nil, "", err
	}
	e, m, info, err := svc.resolve(model, task)
	if err != nil {
		return nil, "", err
	}
	if err := svc.checkPrompt(m, info, textField, text); err != nil {
		return nil, "", toStatus(ctx, err)
	}
	r, err := svc.runGenerate(ctx, e, m, task, img, "image", text, opts, nil)
	if err != nil {
		return nil, "", err
	}
	return r, e.name, nil
}

// checkTexts runs checkPrompt on each of a request's texts (field
// "texts[i]").
func (svc *service) checkTexts(m fusion.Model, info fusion.Info, texts []string) error {
	for i, t := range texts {
		if err := svc.checkPrompt(m, info, fmt.Sprintf("texts[%d]", i), t); err != nil {
			return err
		}
	}
	return nil
}

// Match implements pb.GlimpseServiceServer.
func (svc *service) Match(ctx context.Context, req *pb.MatchRequest) (*pb.MatchResponse, error) {
	v := &validator{cfg: &svc.s.cfg}
	v.image("image", req.GetImage())
	v.texts("texts", req.GetTexts(), 1)
	if err := v.err(); err != nil {
		return nil, err
	}
	e, m, info, err := svc.resolve(req.GetModel(), pb.Task_TASK_MATCH)
	if err != nil {
		return nil, err
	}
	if err := svc.checkTexts(m, info, req.GetTexts()); err != nil {
		return nil, toStatus(ctx, err)
	}
	release, waited, err := svc.s.adm.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	t := timer{queue: waited}
	st, sha, enc, err := svc.s.imageState(ctx, e, m, req.GetImage(), "image")
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	t.encode = enc
	start := time.Now()
	scores, err := m.(fusion.Matcher).Match(ctx, st, req.GetTexts())
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	t.prefill = time.Since(start)
	if len(scores) != len(req.GetTexts()) {
		return nil, status.Errorf(codes.Internal, "model %s returned %d scores for %d texts", e.name, len(scores), len(req.GetTexts()))
	}
	resp := &pb.MatchResponse{ImageSha256: sha, Model: e.name, Timings: t.proto()}
	for i, sc := range scores {
		resp.Scores = append(resp.Scores, &pb.MatchScore{
			Text: req.GetTexts()[i], ItmProbability: sc.ITMProbability, Cosine: sc.Cosine, Logit: sc.Logit,
		})
	}
	return resp, nil
}

// Embed implements pb.GlimpseServiceServer.
func (svc *service) Embed(ctx context.Context, req *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	v := &validator{cfg: &svc.s.cfg}
	if len(req.GetImages())+len(req.GetTexts()) == 0 {
		v.add("images", "send at least one image or text to embed")
	}
	if n := len(req.GetImages()); n > svc.s.cfg.MaxImagesPerRequest {
		v.add("images", "%d images; the limit is %d (server flag --max-images)", n, svc.s.cfg.MaxImagesPerRequest)
	} else {
		for i, img := range req.GetImages() {
			v.image(fmt.Sprintf("images[%d]", i), img)
		}
	}
	v.texts("texts", req.GetTexts(), 0)
	if err := v.err(); err != nil {
		return nil, err
	}
	e, m, info, err := svc.resolve(req.GetModel(), pb.Task_TASK_EMBED)
	if err != nil {
		return nil, err
	}
	if err := svc.checkTexts(m, info, req.GetTexts()); err != nil {
		return nil, toStatus(ctx, err)
	}
	release, waited, err := svc.s.adm.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	t := timer{queue: waited}
	emb := m.(fusion.Embedder)
	resp := &pb.EmbedResponse{Model: e.name}
	for i, img := range req.GetImages() {
		field := fmt.Sprintf("images[%d]", i)
		st, sha, enc, err := svc.s.imageState(ctx, e, m, img, field)
		if err != nil {
			return nil, toStatus(ctx, err)
		}
		t.encode += enc
		vec, err := emb.EmbedImage(ctx, st)
		if err != nil {
			return nil, toStatus(ctx, err)
		}
		resp.Images = append(resp.Images, &pb.Embedding{Values: vec})
		resp.ImageSha256S = append(resp.ImageSha256S, sha)
	}
	if len(req.GetTexts()) > 0 {
		start := time.Now()
		vecs, err := emb.EmbedTexts(ctx, req.GetTexts())
		if err != nil {
			return nil, toStatus(ctx, err)
		}
		if len(vecs) != len(req.GetTexts()) {
			return nil, status.Errorf(codes.Internal, "model %s returned %d embeddings for %d texts", e.name, len(vecs), len(req.GetTexts()))
		}
		t.prefill = time.Since(start)
		for _, vec := range vecs {
			resp.Texts = append(resp.Texts, &pb.Embedding{Values: vec})
		}
	}
	resp.Timings = t.proto()
	return resp, nil
}

// mapPrompt maps Generate's parts onto a task of m: one image first, then
// text parts joined in order.
func mapPrompt(name string, m fusion.Model, req *pb.GenerateRequest) (task pb.Task, img *pb.Image, imgField, text string, err error) {
	task = req.GetTask()
	switch task {
	case pb.Task_TASK_UNSPECIFIED:
		switch {
		case hasTask(m, pb.Task_TASK_CAPTION):
			task = pb.Task_TASK_CAPTION
		case hasTask(m, pb.Task_TASK_ANSWER):
			task = pb.Task_TASK_ANSWER
		default:
			return 0, nil, "", "", failedPrecondition("TASK", name, "model %s cannot generate text (it can: %s); use Match or Embed", name, taskList(m))
		}
	case pb.Task_TASK_CAPTION, pb.Task_TASK_ANSWER:
		if !hasTask(m, task) {
			return 0, nil, "", "", failedPrecondition("TASK", name, "model %s cannot %s; it can: %s", name, taskVerb(task), taskList(m))
		}
	default:
		return 0, nil, "", "", invalidArgument(violation("task", "Generate does %s only with TASK_CAPTION or TASK_ANSWER", task))
	}
	var sb strings.Builder
	for i, p := range req.GetParts() {
		field := fmt.Sprintf("parts[%d]", i)
		switch x := p.GetPart().(type) {
		case *pb.PromptPart_Image:
			if img != nil {
				return 0, nil, "", "", invalidArgument(violation(field, "model %s takes one image per prompt; this is the second", name))
			}
			if sb.Len() > 0 {
				return 0, nil, "", "", invalidArgument(violation(field, "model %s takes the image first, then text; move the image before the text parts", name))
			}
			img, imgField = x.Image, field+".image"
		case *pb.PromptPart_Text:
			if img == nil {
				return 0, nil, "", "", invalidArgument(violation(field, "model %s takes the image first, then text; move the image before the text parts", name))
			}
			sb.WriteString(x.Text)
		default:
			return 0, nil, "", "", invalidArgument(violation(field, "empty part: set text or image"))
		}
	}
	if img == nil {
		return 0, nil, "", "", invalidArgument(violation("parts", "model %s needs an image part", name))
	}
	text = sb.String()
	if task == pb.Task_TASK_ANSWER && strings.TrimSpace(text) == "" {
		return 0, nil, "", "", invalidArgument(violation("parts", "model %s answers questions: add a text part with the question after the image", name))
	}
	return task, img, imgField, text, nil
}

// Generate implements pb.GlimpseServiceServer.
func (svc *service) Generate(req *pb.GenerateRequest, stream grpc.ServerStreamingServer[pb.GenerateResponse]) error {
	ctx := stream.Context()
	v := &validator{cfg: &svc.s.cfg}
	nimg := 0
	for i, p := range req.GetParts() {
		field := fmt.Sprintf("parts[%d]", i)
		switch x := p.GetPart().(type) {
		case *pb.PromptPart_Image:
			nimg++
			v.image(field+".image", x.Image)
		case *pb.PromptPart_Text:
			v.text(field+".text", x.Text, false)
		}
	}
	if len(req.GetParts()) == 0 {
		v.add("parts", "the prompt is empty: send an image part and, if the model takes it, text parts")
	}
	if nimg > svc.s.cfg.MaxImagesPerRequest {
		v.add("parts", "%d images; the limit is %d (server flag --max-images)", nimg, svc.s.cfg.MaxImagesPerRequest)
	}
	opts := v.options("options", req.GetOptions())
	if err := v.err(); err != nil {
		return err
	}
	e, m, info, err := svc.resolve(req.GetModel(), pb.Task_TASK_UNSPECIFIED)
	if err != nil {
		return err
	}
	task, img, imgField, text, err := mapPrompt(e.name, m, req)
	if err != nil {
		return err
	}
	if err := svc.checkPrompt(m, info, "parts", text); err != nil {
		return toStatus(ctx, err)
	}
	r, err := svc.runGenerate(ctx, e, m, task, img, imgField, text, opts, func(p *pb.Piece) error {
		return stream.Send(&pb.GenerateResponse{Event: &pb.GenerateResponse_Piece{Piece: p}})
	})
	if err != nil {
		return err
	}
	return stream.Send(&pb.GenerateResponse{Event: &pb.GenerateResponse_Final{Final: &pb.Final{
		Text: r.gen.Text, TokenIds: int32s(r.gen.TokenIDs), FinishReason: finishOf(r.gen.Finish),
		Usage: r.usage, Timings: r.t.proto(), Task: task, ImageSha256: r.sha, Model: e.name,
	}}})
}
