package blip

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
	"github.com/glimpse-vlm/glimpse/text/tokenizer"
	"github.com/glimpse-vlm/glimpse/vision"
)

// BaseCaptionConfig is the config.json of
// Salesforce/blip-image-captioning-base (the keys that differ from
// BlipConfig's defaults), for NewRandomCaption.
const BaseCaptionConfig = `{
  "architectures": ["BlipForConditionalGeneration"],
  "model_type": "blip",
  "projection_dim": 512,
  "image_text_hidden_size": 256,
  "text_config": {"vocab_size": 30524, "hidden_size": 768, "encoder_hidden_size": 768,
    "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12,
    "max_position_embeddings": 512, "bos_token_id": 30522, "sep_token_id": 102, "pad_token_id": 0},
  "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
    "num_hidden_layers": 12, "image_size": 384, "patch_size": 16, "layer_norm_eps": 1e-5}
}`

// NewRandomCaption builds a BlipForConditionalGeneration of the given
// config.json with random weights (normal, σ 0.02; LayerNorms 1 and 0)
// drawn from seed, without any file: for benchmarks and tests of real
// model sizes. Each tensor's values depend only on its name and seed, and
// are generated when the model packs or copies that tensor
// (checkpoint.FromFunc), so building the model never holds more of the
// fp32 source than the tensor being packed: memory stays near the model's
// own size. The model gets a synthetic WordPiece
// vocabulary ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" at BERT's ids,
// "w<id>" elsewhere, "[DEC]" at bos_token_id) and BLIP's image processor at
// vision_config.image_size, so EncodeImage, Tokenize and Caption work.
func NewRandomCaption(configJSON []byte, seed uint64) (*CaptionModel, error) {
	cfg, err := ParseConfig(configJSON)
	if err != nil {
		return nil, err
	}
	ck := randomWeights(cfg, seed)
	m, err := NewCaption(ck, cfg)
	if err != nil {
		return nil, err
	}
	tok, err := syntheticTokenizer(cfg.Text.VocabSize, cfg.Text.BOS)
	if err != nil {
		return nil, fmt.Errorf("blip: synthetic tokenizer: %w", err)
	}
	m.SetTokenizer(tok)
	s := cfg.Vision.ImageSize
	proc, err := vision.NewProcessor([]byte(fmt.Sprintf(`{"image_processor_type": "BlipImageProcessor", "do_resize": true,
		"size": {"height": %d, "width": %d}, "resample": 3, "do_rescale": true, "rescale_factor": 0.00392156862745098,
		"do_normalize": true, "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
		"do_convert_rgb": true}`, s, s)))
	if err != nil {
		return nil, fmt.Errorf("blip: image processor: %w", err)
	}
	if err := m.SetImageProcessor(proc); err != nil {
		return nil, err
	}
	return m, nil
}

// randomWeights names every tensor a BlipForConditionalGeneration of cfg
// needs, each generated on demand from seed and its name.
func randomWeights(cfg Config, seed uint64) *checkpoint.Checkpoint {
	type spec struct {
		name  string
		shape []int
		fill  float32 // 1 (norm weight), 0 (norm bias) or random (−1)
	}
	var specs []spec
	const random = -1
	add := func(name string, shape ...int) { specs = append(specs, spec{name, shape, random}) }
	norm := func(name string, d int) {
		specs = append(specs, spec{name + ".weight", []int{d}, 1}, spec{name + ".bias", []int{d}, 0})
	}
	lin := func(name string, out, in int) { add(name+".weight", out, in); add(name+".bias", out) }
	v := cfg.Vision
	d, g := v.HiddenSize, v.ImageSize/v.PatchSize
	add("vision_model.embeddings.class_embedding", 1, 1, d)
	add("vision_model.embeddings.patch_embedding.weight", d, 3, v.PatchSize, v.PatchSize)
	add("vision_model.embeddings.patch_embedding.bias", d)
	add("vision_model.embeddings.position_embedding", 1, g*g+1, d)
	norm("vision_model.post_layernorm", d)
	for i := 0; i < v.NumLayers; i++ {
		p := fmt.Sprintf("vision_model.encoder.layers.%d.", i)
		norm(p+"layer_norm1", d)
		norm(p+"layer_norm2", d)
		lin(p+"self_attn.qkv", 3*d, d)
		lin(p+"self_attn.projection", d, d)
		lin(p+"mlp.fc1", v.IntermediateSize, d)
		lin(p+"mlp.fc2", d, v.IntermediateSize)
	}
	t := cfg.Text
	h := t.HiddenSize
	add("text_decoder.bert.embeddings.word_embeddings.weight", t.VocabSize, h)
	add("text_decoder.bert.embeddings.position_embeddings.weight", t.MaxPositions, h)
	norm("text_decoder.bert.embeddings.LayerNorm", h)
	for i := 0; i < t.NumLayers; i++ {
		p := fmt.Sprintf("text_decoder.bert.encoder.layer.%d.", i)
		for _, n := range []string{"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense", "crossattention.self.query", "crossattention.output.dense"} {
			lin(p+n, h, h)
		}
		lin(p+"crossattention.self.key", h, t.EncoderHiddenSize)
		lin(p+"crossattention.self.value", h, t.EncoderHiddenSize)
		norm(p+"attention.output.LayerNorm", h)
		norm(p+"crossattention.output.LayerNorm", h)
		lin(p+"intermediate.dense", t.IntermediateSize, h)
		lin(p+"output.dense", h, t.IntermediateSize)
		norm(p+"output.LayerNorm", h)
	}
	lin("text_decoder.cls.predictions.transform.dense", h, h)
	norm("text_decoder.cls.predictions.transform.LayerNorm", h)
	// cls.predictions.decoder.weight is tied to the word embeddings (HF
	// ties them when loading and save_pretrained stores only one), so it is
	// not a tensor of its own here either.
	add("text_decoder.cls.predictions.bias", t.VocabSize)

	ts := make(map[string]checkpoint.GenTensor, len(specs))
	for _, s := range specs {
		var fill func([]float32)
		switch s.fill {
		case 1, 0:
			v := s.fill
			fill = func(dst []float32) {
				for i := range dst {
					dst[i] = v
				}
			}
		default:
			fill = normalFill(seed, s.name)
		}
		ts[s.name] = checkpoint.GenTensor{Shape: s.shape, Fill: fill}
	}
	return checkpoint.FromFunc(ts)
}

// randomChunk is how many values of a tensor one random stream draws:
// chunks are filled in parallel, each from its own stream, so the values
// do not depend on the number of threads.
const randomChunk = 1 << 16

// normalFill returns a filler of N(0, 0.02²) values that depend only on
// seed, the tensor's name and the position.
func normalFill(seed uint64, name string) func([]float32) {
	h := fnv.New64a()
	h.Write([]byte(name))
	key := h.Sum64()
	return func(dst []float32) {
		chunks := (len(dst) + randomChunk - 1) / randomChunk
		workers := min(runtime.GOMAXPROCS(0), chunks)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := w; c < chunks; c += workers {
					rng := rand.New(rand.NewPCG(seed^key, uint64(c)^0x5bd1e995))
					part := dst[c*randomChunk : min((c+1)*randomChunk, len(dst))]
					for i := range part {
						part[i] = float32(rng.NormFloat64() * 0.02)
					}
				}
			}()
		}
		wg.Wait()
	}
}

// syntheticTokenizer is a BERT WordPiece tokenizer over vocab "w<id>"
// words with BERT's special tokens and BLIP's [DEC] (bos) and [ENC].
func syntheticTokenizer(vocab, bos int) (tokenizer.Tokenizer, error) {
	special := map[int]string{0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]"}
	n := min(vocab, bos)
	if n <= 103 {
		return nil, fmt.Errorf("vocabulary of %d (bos %d) is too small for BERT's special ids", vocab, bos)
	}
	var b strings.Builder
	for i := 0; i < n; i++ {
		if s, ok := special[i]; ok {
			b.WriteString(s)
		} else {
			fmt.Fprintf(&b, "w%d", i)
		}
		b.WriteByte('\n')
	}
	added := map[string]int{"[DEC]": bos}
	if bos+1 < vocab {
		added["[ENC]"] = bos + 1
	}
	addedJSON, _ := json.Marshal(added)
	return tokenizer.LoadFiles(map[string][]byte{
		"vocab.txt":         []byte(b.String()),
		"added_tokens.json": addedJSON,
		"tokenizer_config.json": []byte(`{"tokenizer_class": "BertTokenizer", "do_lower_case": true, "bos_token": "[DEC]",
			"additional_special_tokens": ["[ENC]"], "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
			"unk_token": "[UNK]", "mask_token": "[MASK]", "model_max_length": 512}`),
		"special_tokens_map.json": []byte(`{"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"], "cls_token": "[CLS]",
			"sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]", "mask_token": "[MASK]"}`),
	})
}
