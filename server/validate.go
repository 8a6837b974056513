package server

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/glimpse-vlm/glimpse/fusion"
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
)

// Limits on stop strings.
const (
	maxStopStrings = 16
	maxStopBytes   = 256
)

// validator collects field violations for one request.
type validator struct {
	cfg *Config
	vs  []*errdetails.BadRequest_FieldViolation
}

func (v *validator) add(field, format string, a ...any) {
	v.vs = append(v.vs, violation(field, format, a...))
}

// err is nil or INVALID_ARGUMENT naming every violation.
func (v *validator) err() error {
	if len(v.vs) == 0 {
		return nil
	}
	return invalidArgument(v.vs...)
}

// image checks an image's presence, size and hash syntax.
func (v *validator) image(field string, img *pb.Image) {
	switch src := img.GetSource().(type) {
	case *pb.Image_Data:
		switch n := int64(len(src.Data)); {
		case n == 0:
			v.add(field+".data", "empty image: send the bytes of a JPEG, PNG, GIF, WebP, BMP or TIFF file")
		case n > v.cfg.MaxImageBytes:
			v.add(field+".data", "image is %d bytes; the limit is %d (server flag --max-image-bytes)", n, v.cfg.MaxImageBytes)
		}
	case *pb.Image_Sha256:
		if !validSHA(src.Sha256) {
			v.add(field+".sha256", "%q is not a SHA-256 in hex (64 hex digits)", truncate(src.Sha256, 80))
		}
	default:
		v.add(field, "an image is required (data or sha256)")
	}
}

// text checks a text's encoding and size.
func (v *validator) text(field, s string, required bool) {
	switch {
	case required && strings.TrimSpace(s) == "":
		v.add(field, "must not be empty")
	case !utf8.ValidString(s):
		v.add(field, "is not valid UTF-8")
	case len(s) > v.cfg.MaxTextBytes:
		v.add(field, "is %d bytes; the limit is %d (server flag --max-text-bytes)", len(s), v.cfg.MaxTextBytes)
	}
}

// texts checks a list of texts (at least min).
func (v *validator) texts(field string, ts []string, min int) {
	if len(ts) < min {
		v.add(field, "at least %d text(s) required", min)
	}
	if len(ts) > v.cfg.MaxTexts {
		v.add(field, "%d texts; the limit is %d (server flag --max-texts)", len(ts), v.cfg.MaxTexts)
		return
	}
	for i, t := range ts {
		v.text(fmt.Sprintf("%s[%d]", field, i), t, true)
	}
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// options checks decoding options and converts them.
func (v *validator) options(field string, o *pb.GenerationOptions) fusion.GenerateOptions {
	var g fusion.GenerateOptions
	if o == nil {
		return g
	}
	f := func(name string) string { return field + "." + name }
	switch n := o.GetMaxNewTokens(); {
	case n < 0:
		v.add(f("max_new_tokens"), "must be >= 0 (0 = the model's default), got %d", n)
	case int(n) > v.cfg.MaxNewTokens:
		v.add(f("max_new_tokens"), "%d is more than the server's limit of %d (flag --max-new-tokens-cap)", n, v.cfg.MaxNewTokens)
	}
	g.MaxNewTokens = int(o.GetMaxNewTokens())
	switch n := o.GetMinNewTokens(); {
	case n < 0:
		v.add(f("min_new_tokens"), "must be >= 0, got %d", n)
	case o.GetMaxNewTokens() > 0 && n > o.GetMaxNewTokens():
		v.add(f("min_new_tokens"), "%d is more than max_new_tokens (%d)", n, o.GetMaxNewTokens())
	}
	g.MinNewTokens = int(o.GetMinNewTokens())
	switch n := o.GetNumBeams(); {
	case n < 0:
		v.add(f("num_beams"), "must be >= 0 (0 = the model's default), got %d", n)
	case int(n) > v.cfg.MaxBeams:
		v.add(f("num_beams"), "%d is more than the server's limit of %d (flag --max-beams)", n, v.cfg.MaxBeams)
	}
	g.NumBeams = int(o.GetNumBeams())
	g.Sample = o.GetDoSample()
	if o.Temperature != nil {
		if t := o.GetTemperature(); !finite(t) || t <= 0 {
			v.add(f("temperature"), "must be a number > 0, got %v", t)
		}
		g.Temperature = o.GetTemperature()
	}
	if k := o.GetTopK(); k < 0 {
		v.add(f("top_k"), "must be >= 0 (0 = the checkpoint's default; Hugging Face's is 50), got %d", k)
	}
	g.TopK = int(o.GetTopK())
	if o.TopP != nil {
		if p := o.GetTopP(); !finite(p) || p <= 0 || p > 1 {
			v.add(f("top_p"), "must be in (0, 1], got %v", p)
		}
		g.TopP = o.GetTopP()
	}
	if o.RepetitionPenalty != nil {
		if p := o.GetRepetitionPenalty(); !finite(p) || p <= 0 {
			v.add(f("repetition_penalty"), "must be a number > 0 (1 = off), got %v", p)
		}
		g.RepetitionPenalty = o.GetRepetitionPenalty()
	}
	if o.Seed != nil {
		g.Seed = o.GetSeed()
		if g.Seed == 0 {
			// fusion's 0 means "draw a random seed"; an explicit seed 0
			// must be reproducible like any other.
			g.Seed = math.MaxUint64
		}
	}
	if n := o.GetNoRepeatNgramSize(); n < 0 {
		v.add(f("no_repeat_ngram_size"), "must be >= 0 (0 = off), got %d", n)
	}
	g.NoRepeatNgramSize = int(o.GetNoRepeatNgramSize())
	if len(o.GetStop()) > maxStopStrings {
		v.add(f("stop"), "%d stop strings; the limit is %d", len(o.GetStop()), maxStopStrings)
	}
	for i, s := range o.GetStop() {
		switch {
		case s == "":
			v.add(fmt.Sprintf("%s[%d]", f("stop"), i), "must not be empty")
		case len(s) > maxStopBytes:
			v.add(fmt.Sprintf("%s[%d]", f("stop"), i), "is %d bytes; the limit is %d", len(s), maxStopBytes)
		case !utf8.ValidString(s):
			v.add(fmt.Sprintf("%s[%d]", f("stop"), i), "is not valid UTF-8")
		}
	}
	g.Stop = o.GetStop()
	g.Logprobs = o.GetLogprobs()
	if o.LengthPenalty != nil {
		lp := o.GetLengthPenalty()
		if !finite(lp) {
			v.add(f("length_penalty"), "must be a finite number, got %v", lp)
		}
		g.LengthPenalty = &lp
	}
	if o.EarlyStopping != nil {
		es := o.GetEarlyStopping()
		g.EarlyStopping = &es
	}
	return g
}

func validSHA(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

func normalizeSHA(s string) string { return strings.ToLower(s) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
