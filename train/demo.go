package train

import (
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/glimpse-vlm/glimpse/demo"
)

// DemoConfig is the size of the shipped demo models: 64×64 images in 16×16
// patches, hidden size 64, 4 heads.
func DemoConfig(vocab int) Config {
	return Config{
		Vision:  VisionConfig{ImageSize: demo.Size, PatchSize: demo.Cell, Hidden: 64, Layers: 3, Heads: 4, Intermediate: 192, Eps: 1e-5},
		Text:    TextConfig{Vocab: vocab, Hidden: 64, Layers: 2, Heads: 4, Intermediate: 192, MaxPositions: 32, Eps: 1e-12},
		ProjDim: 64,
	}
}

// Stage is one run of a model's training: a fresh AdamW (weight decay
// 0.01) with linear warm-up over Steps/20 steps to LR and cosine decay to
// LR/20 at Steps, stopped after Stop steps (0: all Steps).
type Stage struct {
	Steps int
	LR    float64
	Stop  int
}

// run is the number of steps the stage runs.
func (s Stage) run() int {
	if s.Stop > 0 && s.Stop < s.Steps {
		return s.Stop
	}
	return s.Steps
}

// Schedule lists each model's stages, run in order, each continuing the
// previous one's weights with a fresh optimiser; every stage draws new
// training scenes.
type Schedule struct {
	Caption, VQA, Retrieval []Stage
}

// DemoSchedule is the recipe of `glimpse train demo` without flags: the
// chain of runs (optimiser restarts included) that made the shipped models
// (demo/README.md), 14000 + 11000 + 6500 steps of batch 16.
func DemoSchedule() Schedule {
	return Schedule{
		Caption:   []Stage{{Steps: 3000, LR: 2e-3}, {Steps: 4000, LR: 1e-3}, {Steps: 4000, LR: 1e-3}, {Steps: 4000, LR: 7e-4, Stop: 3000}},
		VQA:       []Stage{{Steps: 3000, LR: 1e-3}, {Steps: 4000, LR: 1e-3}, {Steps: 4000, LR: 7e-4}},
		Retrieval: []Stage{{Steps: 2500, LR: 1e-3}, {Steps: 2000, LR: 7e-4}, {Steps: 2000, LR: 5e-4}},
	}
}

// steps is the total number of steps of stages.
func steps(stages []Stage) int {
	n := 0
	for _, s := range stages {
		n += s.run()
	}
	return n
}

// DemoOptions control TrainDemo.
type DemoOptions struct {
	Out  string // parent folder: Out/caption, Out/vqa, Out/retrieval
	Seed uint64
	// Schedule, if not nil, gives every model's stages; otherwise each
	// model trains in one stage of CaptionSteps, VQASteps or
	// RetrievalSteps steps at peak rate LR.
	Schedule                               *Schedule
	CaptionSteps, VQASteps, RetrievalSteps int
	Batch                                  int
	LR                                     float64
	Half                                   bool      // F16 safetensors
	Log                                    io.Writer // progress (nil: none)
	LogEvery                               int
	Config                                 *Config // nil: DemoConfig
	Negatives                              int     // retrieval negatives per image
	FreezeVisionAfterCaption               bool
	// RetrievalTextFromCaption initialises the retrieval model's
	// text_encoder from the captioner's text_decoder body (the same BERT
	// layers with cross-attention to the image), instead of at random.
	RetrievalTextFromCaption bool
	// CaptionDir, if set, loads a trained captioner from this folder
	// instead of training one (to redo the later stages).
	CaptionDir string
	// VQADir, if set, continues training this VQA model instead of
	// starting one from the captioner.
	VQADir string
	// RetrievalDir, if set, continues training this retrieval model.
	RetrievalDir string
	// Only, if set, trains only "caption", "vqa" or "retrieval".
	Only string
	// SaveEvery, if > 0, saves the captioner every SaveEvery steps (so a
	// long run can be evaluated, or stopped, early).
	SaveEvery int
	save      func(*Model) error
	// AuxWeight, if > 0, adds an auxiliary per-patch shape/size
	// classification loss on the vision states (a transient head that is
	// not saved), which speeds up learning shapes.
	AuxWeight float32
	// Workers is the number of goroutines computing a step's samples
	// (results depend on it, not on scheduling).
	Workers int
}

// DefaultDemoOptions are the settings of `glimpse train demo` without
// flags: the DemoSchedule recipe that made the shipped models (see
// demo/README.md).
func DefaultDemoOptions(out string) DemoOptions {
	sc := DemoSchedule()
	return DemoOptions{Out: out, Seed: 1, Schedule: &sc, CaptionSteps: steps(sc.Caption), VQASteps: steps(sc.VQA), RetrievalSteps: steps(sc.Retrieval),
		Batch: 16, LR: 1e-3, Half: true, LogEvery: 100, Negatives: 3, Workers: 2, AuxWeight: 0.5,
		RetrievalTextFromCaption: true}
}

// schedule returns the stages to run.
func (o DemoOptions) schedule() Schedule {
	if o.Schedule != nil {
		return *o.Schedule
	}
	one := func(n int) []Stage {
		if n <= 0 {
			return nil
		}
		return []Stage{{Steps: n, LR: o.LR}}
	}
	return Schedule{Caption: one(o.CaptionSteps), VQA: one(o.VQASteps), Retrieval: one(o.RetrievalSteps)}
}

// StepLog is one logged training step.
type StepLog struct {
	Model   string
	Step    int
	Loss    float64
	Elapsed time.Duration
}

// DemoResult reports a TrainDemo run.
type DemoResult struct {
	Dirs    map[string]string // "caption", "vqa", "retrieval" → folder
	Losses  map[string][]float64
	Elapsed time.Duration
}

// TrainDemo trains the three demo models on the synthetic world (train
// split seeds, a fresh batch of scenes every step) and writes them as HF
// folders under o.Out. Deterministic given o.Seed.
func TrainDemo(o DemoOptions) (*DemoResult, error) {
	start := time.Now()
	files := WordPieceFiles(demo.Words(), demo.Size, 32)
	cfg := DemoConfig(VocabSize(files))
	if o.Config != nil {
		cfg = *o.Config
		cfg.Text.Vocab = VocabSize(files)
	}
	if o.Batch <= 0 {
		return nil, fmt.Errorf("train: batch %d, must be ≥ 1", o.Batch)
	}
	sched := o.schedule()
	for _, st := range [][]Stage{sched.Caption, sched.VQA, sched.Retrieval} {
		for _, s := range st {
			if s.Steps <= 0 || s.LR <= 0 || s.Stop < 0 {
				return nil, fmt.Errorf("train: stage %+v: steps and learning rate must be positive", s)
			}
		}
	}
	res := &DemoResult{Dirs: map[string]string{}, Losses: map[string][]float64{}}
	// Scenes of the three stages come from disjoint train-seed ranges.
	scene := func(stage, step, i int) *demo.Scene {
		return demo.NewScene(o.Seed*1_000_000_007%(demo.HeldOutStart/4) + uint64(stage)*(demo.HeldOutStart/4) + uint64(step*o.Batch+i))
	}

	want := func(stage string) bool { return o.Only == "" || o.Only == stage }
	var capm *Model
	var err error
	if o.CaptionDir != "" {
		if capm, err = Load(o.CaptionDir); err != nil {
			return nil, err
		}
		if capm.Arch != ArchCaption {
			return nil, fmt.Errorf("train: %s holds a %s, not a %s", o.CaptionDir, capm.Arch, ArchCaption)
		}
		cfg = capm.Cfg
	} else if capm, err = NewModel(ArchCaption, cfg, files, o.Seed); err != nil {
		return nil, err
	}
	// With --caption DIR and --only caption, training continues from DIR.
	trainCaption := (o.CaptionDir == "" || o.Only == "caption") && want("caption")
	capDir := filepath.Join(o.Out, "caption")
	o.save = func(m *Model) error { return m.Save(capDir, o.Half) }
	if trainCaption && len(sched.Caption) > 0 {
		losses, err := stages(capm, "caption", o, sched.Caption, start, func(m *Model, step, i int) (float64, error) {
			s := scene(0, step, i)
			return m.CaptionLossAux(m.Pixels(s.Render()), s.Caption(), o.aux(s, cfg), 1/float32(o.Batch))
		})
		if err != nil {
			return nil, err
		}
		res.Losses["caption"] = losses
	}
	o.save = nil
	if trainCaption {
		res.Dirs["caption"] = capDir
		if err := capm.Save(res.Dirs["caption"], o.Half); err != nil {
			return nil, err
		}
	}
	if want("vqa") {
		if err := trainVQA(o, cfg, files, capm, scene, res, start); err != nil {
			return nil, err
		}
	}
	if want("retrieval") {
		if err := trainRetrieval(o, cfg, files, capm, scene, res, start); err != nil {
			return nil, err
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

func trainVQA(o DemoOptions, cfg Config, files map[string][]byte, capm *Model, scene func(stage, step, i int) *demo.Scene, res *DemoResult, start time.Time) error {

	var vqa *Model
	var err error
	if o.VQADir != "" { // continue training a VQA model
		if vqa, err = Load(o.VQADir); err != nil {
			return err
		}
		if vqa.Arch != ArchVQA {
			return fmt.Errorf("train: %s holds a %s, not a %s", o.VQADir, vqa.Arch, ArchVQA)
		}
	} else {
		if vqa, err = NewModel(ArchVQA, cfg, files, o.Seed+1); err != nil {
			return err
		}
		copyParams(vqa, capm, "vision_model.")
		copyParams(vqa, capm, "text_decoder.")
	}
	vqa.FreezeVision(o.FreezeVisionAfterCaption)
	if st := o.schedule().VQA; len(st) > 0 {
		losses, err := stages(vqa, "vqa", o, st, start, func(m *Model, step, i int) (float64, error) {
			s := scene(1, step, i)
			qas := s.QAs()
			r := rand.New(rand.NewPCG(s.Seed, 77))
			qa := qas[r.IntN(len(qas))]
			return m.VQALossAux(m.Pixels(s.Render()), qa.Question, qa.Answer, o.aux(s, cfg), 1/float32(o.Batch))
		})
		if err != nil {
			return err
		}
		res.Losses["vqa"] = losses
	}
	res.Dirs["vqa"] = filepath.Join(o.Out, "vqa")
	return vqa.Save(res.Dirs["vqa"], o.Half)
}

func trainRetrieval(o DemoOptions, cfg Config, files map[string][]byte, capm *Model, scene func(stage, step, i int) *demo.Scene, res *DemoResult, start time.Time) error {
	var ret *Model
	var err error
	if o.RetrievalDir != "" { // continue training a retrieval model
		if ret, err = Load(o.RetrievalDir); err != nil {
			return err
		}
		if ret.Arch != ArchRetrieval {
			return fmt.Errorf("train: %s holds a %s, not a %s", o.RetrievalDir, ret.Arch, ArchRetrieval)
		}
	} else {
		if ret, err = NewModel(ArchRetrieval, cfg, files, o.Seed+2); err != nil {
			return err
		}
		copyParams(ret, capm, "vision_model.")
		if o.RetrievalTextFromCaption {
			copyRenamed(ret, capm, "text_encoder.", "text_decoder.bert.")
		}
	}
	ret.FreezeVision(o.FreezeVisionAfterCaption)
	if st := o.schedule().Retrieval; len(st) > 0 {
		losses, err := stages(ret, "retrieval", o, st, start, func(m *Model, step, i int) (float64, error) {
			s := scene(2, step, i)
			return m.RetrievalLossAux(m.Pixels(s.Render()), s.Caption(), s.Negatives(o.Negatives, uint64(step)), o.aux(s, cfg), 1/float32(o.Batch), 0.07)
		})
		if err != nil {
			return err
		}
		res.Losses["retrieval"] = losses
	}
	res.Dirs["retrieval"] = filepath.Join(o.Out, "retrieval")
	return ret.Save(res.Dirs["retrieval"], o.Half)
}

// copyParams copies src's tensors named prefix* into dst (same shapes).
func copyParams(dst, src *Model, prefix string) {
	for _, p := range dst.Params.List() {
		if len(p.Name) >= len(prefix) && p.Name[:len(prefix)] == prefix {
			if q := src.Params.Get(p.Name); q != nil && len(q.W) == len(p.W) {
				copy(p.W, q.W)
			}
		}
	}
	dst.master.Touch()
}

// stages runs the stages in order (a fresh optimiser each; the step
// number given to sample keeps counting, so every stage draws new scenes)
// and returns the mean loss of every step.
func stages(m *Model, name string, o DemoOptions, st []Stage, start time.Time, sample func(m *Model, step, i int) (float64, error)) ([]float64, error) {
	var all []float64
	off := 0
	for k, s := range st {
		label := name
		if len(st) > 1 {
			label = fmt.Sprintf("%s stage %d/%d (%d steps @ %g)", name, k+1, len(st), s.run(), s.LR)
		}
		losses, err := loop(m, label, o, s, start, func(m *Model, step, i int) (float64, error) { return sample(m, off+step, i) })
		all = append(all, losses...)
		if err != nil {
			return all, err
		}
		off += s.run()
	}
	return all, nil
}

// copyRenamed copies src's tensor srcPrefix+X into dst's tensor
// dstPrefix+X (same shape) for every dst tensor named dstPrefix*.
func copyRenamed(dst, src *Model, dstPrefix, srcPrefix string) {
	for _, p := range dst.Params.List() {
		if rest, ok := strings.CutPrefix(p.Name, dstPrefix); ok {
			if q := src.Params.Get(srcPrefix + rest); q != nil && len(q.W) == len(p.W) {
				copy(p.W, q.W)
			}
		}
	}
	dst.master.Touch()
}

// loop runs one stage: stage.run() optimiser steps of o.Batch samples each,
// and returns the mean loss of every step. With o.Workers > 1 the samples
// of a step are spread over replicas that share the weights and keep
// their own gradients (sample i on replica i mod Workers), summed in
// replica order: results depend on Workers, never on scheduling.
func loop(m *Model, name string, o DemoOptions, stage Stage, start time.Time, sample func(m *Model, step, i int) (float64, error)) ([]float64, error) {
	opt := NewAdamW(stage.LR, 0.01, max(1, stage.Steps/20), stage.Steps)
	steps := stage.run()
	reps := []*Model{m}
	for k := 1; k < o.Workers; k++ {
		reps = append(reps, m.replica())
	}
	var losses []float64
	sums := make([]float64, len(reps))
	errs := make([]error, len(reps))
	for step := 0; step < steps; step++ {
		if _, err := m.modules(); err != nil { // build once, before the workers share them
			return losses, err
		}
		var wg sync.WaitGroup
		for k, r := range reps {
			r.Params.ZeroGrad()
			sums[k] = 0
			wg.Add(1)
			go func(k int, r *Model) {
				defer wg.Done()
				for i := k; i < o.Batch; i += len(reps) {
					l, err := sample(r, step, i)
					if err != nil {
						errs[k] = err
						return
					}
					sums[k] += l
				}
			}(k, r)
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return losses, fmt.Errorf("train: %s step %d: %w", name, step, err)
			}
		}
		l := sums[0]
		for k := 1; k < len(reps); k++ {
			l += sums[k]
			for j, p := range m.Params.List() {
				addInto(p.G, reps[k].Params.List()[j].G)
			}
		}
		l /= float64(o.Batch)
		if err := m.Params.checkFinite(); err != nil {
			return losses, fmt.Errorf("train: %s step %d: %w", name, step, err)
		}
		m.Params.ClipGradNorm(1.0)
		opt.Step(m.Params)
		losses = append(losses, l)
		if o.save != nil && o.SaveEvery > 0 && (step+1)%o.SaveEvery == 0 && step+1 < steps {
			if err := o.save(m); err != nil {
				return losses, err
			}
		}
		if o.Log != nil && o.LogEvery > 0 && (step%o.LogEvery == 0 || step == steps-1) {
			fmt.Fprintf(o.Log, "%s step %d/%d loss %.4f lr %.2e elapsed %s\n", name, step+1, steps, l, opt.Rate(step), time.Since(start).Round(time.Second))
		}
	}
	return losses, nil
}

// aux returns the auxiliary targets of scene s, or nil without AuxWeight.
func (o DemoOptions) aux(s *demo.Scene, cfg Config) *Aux {
	if o.AuxWeight <= 0 || cfg.Vision.ImageSize != demo.Size {
		return nil
	}
	shape, size := s.PatchLabels(cfg.Vision.PatchSize)
	return &Aux{Shape: shape, Size: size, Layout: int(s.Layout), Weight: o.AuxWeight}
}
