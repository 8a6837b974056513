package vitgpt2

import (
	"fmt"
	"math/rand/v2"

	"github.com/glimpse-vlm/glimpse/internal/checkpoint"
)

// randomCheckpoint builds an in-memory VisionEncoderDecoder checkpoint of
// cfg with seeded random weights (HF tensor names; lm_head tied, absent).
func randomCheckpoint(cfg Config, seed uint64) *checkpoint.Checkpoint {
	r := rand.New(rand.NewPCG(seed, 1))
	ts := map[string]checkpoint.MemTensor{}
	add := func(name string, scale float32, shape ...int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = scale * float32(r.NormFloat64())
		}
		ts[name] = checkpoint.MemTensor{Shape: shape, Data: v}
	}
	ones := func(name string, n int) {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1 + 0.1*float32(r.NormFloat64())
		}
		ts[name] = checkpoint.MemTensor{Shape: []int{n}, Data: v}
	}
	ln := func(p string, d int) { ones(p+".weight", d); add(p+".bias", 0.02, d) }

	e := cfg.Encoder
	d, in, p, ch := e.HiddenSize, e.IntermediateSize, e.PatchSize, e.NumChannels
	g := e.ImageSize / p
	add("encoder.embeddings.patch_embeddings.projection.weight", 0.02, d, ch, p, p)
	add("encoder.embeddings.patch_embeddings.projection.bias", 0.02, d)
	add("encoder.embeddings.cls_token", 0.02, 1, 1, d)
	add("encoder.embeddings.position_embeddings", 0.02, 1, g*g+1, d)
	for i := 0; i < e.NumLayers; i++ {
		pre := fmt.Sprintf("encoder.encoder.layer.%d.", i)
		ln(pre+"layernorm_before", d)
		ln(pre+"layernorm_after", d)
		for _, n := range []string{"attention.attention.query", "attention.attention.key", "attention.attention.value", "attention.output.dense"} {
			add(pre+n+".weight", 0.02, d, d)
			add(pre+n+".bias", 0.02, d)
		}
		add(pre+"intermediate.dense.weight", 0.02, in, d)
		add(pre+"intermediate.dense.bias", 0.02, in)
		add(pre+"output.dense.weight", 0.02, d, in)
		add(pre+"output.dense.bias", 0.02, d)
	}
	ln("encoder.layernorm", d)
	add("encoder.pooler.dense.weight", 0.02, d, d)
	add("encoder.pooler.dense.bias", 0.02, d)

	c := cfg.Decoder
	dd, di := c.NEmbd, c.NInner
	add("decoder.transformer.wte.weight", 0.02, c.VocabSize, dd)
	add("decoder.transformer.wpe.weight", 0.01, c.NPositions, dd)
	conv := func(name string, i, o int) { add(name+".weight", 0.02, i, o); add(name+".bias", 0.02, o) }
	for i := 0; i < c.NLayer; i++ {
		pre := fmt.Sprintf("decoder.transformer.h.%d.", i)
		ln(pre+"ln_1", dd)
		conv(pre+"attn.c_attn", dd, 3*dd)
		conv(pre+"attn.c_proj", dd, dd)
		ln(pre+"ln_cross_attn", dd)
		conv(pre+"crossattention.q_attn", dd, dd)
		conv(pre+"crossattention.c_attn", dd, 2*dd)
		conv(pre+"crossattention.c_proj", dd, dd)
		ln(pre+"ln_2", dd)
		conv(pre+"mlp.c_fc", dd, di)
		conv(pre+"mlp.c_proj", di, dd)
	}
	ln("decoder.transformer.ln_f", dd)
	if cfg.EncToDecProj {
		add("enc_to_dec_proj.weight", 0.05, dd, d)
		add("enc_to_dec_proj.bias", 0.02, dd)
	}
	return checkpoint.FromFloat32(ts)
}
