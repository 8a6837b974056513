package weights

import "github.com/glimpse-vlm/glimpse/kernels"

// The pieces of the backward passes (vision/vit, text/bert) that only
// differ by tensor names: a Linear stacked from several nn.Linears, a
// LayerNorm, and the column blocks of a fused projection.

// LinearBackward is the backward of a Linear whose weight is the row
// concatenation of the nn.Linears names (each out×in, with a bias if
// bias): dx (rows×in; nil to skip) += dy·W, and the named gradients
// accumulate dyᵀ·x and Σdy. dy is rows × (out·len(names)).
func LinearBackward(p Params, names []string, bias bool, dx, dy, x []float32, rows, in, out int) {
	ld := out * len(names)
	part := dy
	if len(names) > 1 {
		part = make([]float32, rows*out)
	}
	for j, n := range names {
		if len(names) > 1 {
			for r := 0; r < rows; r++ {
				copy(part[r*out:(r+1)*out], dy[r*ld+j*out:r*ld+(j+1)*out])
			}
		}
		var gb, w []float32
		if bias {
			gb = p.Grad(n + ".bias")
		}
		if dx != nil {
			w = p.Weight(n + ".weight")
		}
		kernels.LinearBackward(dx, p.Grad(n+".weight"), gb, part, x, w, rows, in, out)
	}
}

// NormBackward returns dx of the LayerNorm name (input x, rows × d) given
// dy, and accumulates its weight and bias gradients.
func NormBackward(p Params, name string, dy, x []float32, rows int, eps float32) []float32 {
	gamma := p.Weight(name + ".weight")
	d := len(gamma)
	dx := make([]float32, rows*d)
	kernels.LayerNormBackward(dx, p.Grad(name+".weight"), p.Grad(name+".bias"), dy, x, gamma, rows, d, eps)
	return dx
}

// SplitColumns copies the column blocks [0,w), [w,2w), … of the rows×ld
// matrix x into dst (rows×w each).
func SplitColumns(x []float32, rows, ld, w int, dst ...[]float32) {
	for r := 0; r < rows; r++ {
		for j, o := range dst {
			copy(o[r*w:(r+1)*w], x[r*ld+j*w:r*ld+(j+1)*w])
		}
	}
}

// JoinColumns writes src[j] (rows×w) into column block j of the rows×ld
// matrix dst.
func JoinColumns(dst []float32, rows, ld, w int, src ...[]float32) {
	for r := 0; r < rows; r++ {
		for j, s := range src {
			copy(dst[r*ld+j*w:r*ld+(j+1)*w], s[r*w:(r+1)*w])
		}
	}
}
