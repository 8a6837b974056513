package bert

import (
	"github.com/glimpse-vlm/glimpse/internal/weights"
)

// loader reads the text model's tensors by full HF name (the caller's
// prefix is part of each name). Embedding tables and the LM head are read
// in place (views of the checkpoint, which the model keeps open).
type loader struct {
	*weights.Binder
}

func (ld *loader) layerNorm(name string, d int, eps float32) (LayerNorm, error) {
	g, b, err := ld.Norm(name, d)
	return LayerNorm{Gamma: g, Beta: b, Eps: eps}, err
}
