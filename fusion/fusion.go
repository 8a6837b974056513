// Package fusion defines what a served vision-language model can do and the
// registry that loads a Hugging Face checkpoint folder into one.
//
// A model family (fusion/blip, fusion/vitgpt2, fusion/clip) lives in a
// sub-package that imports fusion and calls Register in its init function;
// fusion/families blank-imports them all. fusion itself never imports a
// family. The server asks a loaded Model which task interfaces it
// implements (Captioner, Answerer, Matcher, Embedder).
package fusion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// Task names a capability a model can serve.
type Task string

// The tasks a model may support.
const (
	TaskCaption Task = "caption"
	TaskAnswer  Task = "answer"
	TaskMatch   Task = "match"
	TaskEmbed   Task = "embed"
)

// Info describes a loaded model.
type Info struct {
	Family       string // "blip", "vit-gpt2", "clip"
	Architecture string // the HF architectures[0], e.g. "BlipForConditionalGeneration"
	Tasks        []Task
	ImageSize    int // square input size after preprocessing (height = width)
	ImageTokens  int // vision states per image (patches + class token)
	MaxTextLen   int // longest prompt in tokens (position embeddings)
	VocabSize    int
}

// ImageState is an image encoded by a model's vision tower: the final
// hidden states, Tokens rows of Dim values. It is immutable once made and
// may be cached and shared by concurrent requests on the same model.
type ImageState struct {
	Tokens, Dim int
	Hidden      []float32 // Tokens×Dim row-major
}

// Bytes is the memory the state holds, for cache accounting.
func (s *ImageState) Bytes() int { return 4*len(s.Hidden) + 64 }

// Model is a loaded checkpoint. Every Model encodes images; the task
// interfaces say what else it can do.
type Model interface {
	Info() Info
	// EncodeImage preprocesses a decoded image exactly as the checkpoint's
	// image processor does and runs the vision encoder.
	EncodeImage(ctx context.Context, img image.Image) (*ImageState, error)
	// EncodeImages encodes several images as one batch; results equal
	// EncodeImage's one by one.
	EncodeImages(ctx context.Context, imgs []image.Image) ([]*ImageState, error)
	// Tokenize returns the prompt token ids the model's tokenizer makes
	// (with special tokens as HF's tokenizer(text) adds them).
	Tokenize(text string) ([]int, error)
	Close() error
}

// GenerateOptions controls decoding. A zero field means "the checkpoint's
// default" (generation_config.json, then config.json, then HF's default).
type GenerateOptions struct {
	MaxNewTokens      int
	MinNewTokens      int
	NumBeams          int
	LengthPenalty     *float64
	EarlyStopping     *bool
	Temperature       float64 // > 0 with Sample
	TopK              int
	TopP              float64
	RepetitionPenalty float64
	NoRepeatNgramSize int
	Sample            bool
	Seed              uint64
	Stop              []string
	Logprobs          bool
}

// Token is one generated token as it is streamed.
type Token struct {
	ID      int
	Text    string  // the text this token adds to the decoded output (may be "")
	Logprob float32 // when requested
}

// FinishReason says why generation stopped.
type FinishReason string

// Finish reasons.
const (
	FinishEOS       FinishReason = "eos"
	FinishLength    FinishReason = "length"
	FinishStop      FinishReason = "stop"
	FinishCancelled FinishReason = "cancelled"
)

// Generation is the result of a caption or an answer.
type Generation struct {
	// Text is what HF's processor.decode(generate(...)[0],
	// skip_special_tokens=True) gives (a BLIP caption prompt included).
	Text string
	// TokenIDs are the generated ids after the prompt: no bos/decoder-start
	// id, no prompt ids, no final eos or trailing pad.
	TokenIDs     []int
	Logprobs     []float32
	Finish       FinishReason
	PromptTokens int
}

// OnToken receives tokens as they are decoded; returning an error stops
// generation with that error. It may be nil.
type OnToken func(Token) error

// Captioner writes a caption for an image, optionally continuing a text prefix.
type Captioner interface {
	Caption(ctx context.Context, img *ImageState, prompt string, opts GenerateOptions, on OnToken) (*Generation, error)
}

// Answerer answers a question about an image.
type Answerer interface {
	Answer(ctx context.Context, img *ImageState, question string, opts GenerateOptions, on OnToken) (*Generation, error)
}

// MatchScore is how well one text matches an image. Fields a model does not
// provide are nil.
type MatchScore struct {
	ITMProbability *float32 // BLIP ITM head: probability of "match"
	Cosine         *float32 // cosine of normalised projected embeddings
	Logit          *float32 // CLIP: exp(logit_scale)·cosine
}

// Matcher scores texts against an image.
type Matcher interface {
	Match(ctx context.Context, img *ImageState, texts []string) ([]MatchScore, error)
}

// Embedder maps images and texts into a shared, L2-normalised space.
type Embedder interface {
	EmbedImage(ctx context.Context, img *ImageState) ([]float32, error)
	EmbedTexts(ctx context.Context, texts []string) ([][]float32, error)
}

// ErrUnknownArchitecture is returned by Load for a config.json whose
// architectures no registered family serves.
var ErrUnknownArchitecture = errors.New("unknown architecture")

// Loader loads a checkpoint folder for one architecture.
type Loader func(dir string) (Model, error)

var (
	mu      sync.RWMutex
	loaders = map[string]Loader{}
)

// Register makes a loader available for an HF architecture name (the
// config.json "architectures" entry, e.g. "BlipForConditionalGeneration").
// It panics if the name is registered twice.
func Register(architecture string, l Loader) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := loaders[architecture]; dup {
		panic("fusion: architecture registered twice: " + architecture)
	}
	loaders[architecture] = l
}

// Architectures lists the registered architecture names, sorted.
func Architectures() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(loaders))
	for a := range loaders {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Load reads dir/config.json and loads the checkpoint with the loader
// registered for its first architecture.
func Load(dir string) (Model, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w (a Hugging Face checkpoint folder needs config.json)", dir, err)
	}
	var cfg struct {
		Architectures []string `json:"architectures"`
		ModelType     string   `json:"model_type"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("load %s: config.json: %w", dir, err)
	}
	mu.RLock()
	var l Loader
	var arch string
	for _, a := range cfg.Architectures {
		if l = loaders[a]; l != nil {
			arch = a
			break
		}
	}
	mu.RUnlock()
	if l == nil {
		return nil, fmt.Errorf("load %s: %w %v (model_type %q); supported: %v", dir, ErrUnknownArchitecture, cfg.Architectures, cfg.ModelType, Architectures())
	}
	m, err := l(dir)
	if err != nil {
		return nil, fmt.Errorf("load %s (%s): %w", dir, arch, err)
	}
	return m, nil
}
