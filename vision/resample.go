package vision

import (
	"fmt"
	"math"
)

// Why a resampler of our own: HF's image processors resize through PIL's Image.resize on the 8-bit
// image, and the model was trained on exactly those pixels. github.com/disintegration/imaging (and
// x/image/draw) convolve in floating point over 16-bit premultiplied colour, centre their kernels
// differently at the edges and round once at the end, so they land several levels away from PIL
// on edges. PIL (libImaging/Resample.c) instead:
//   - runs a separable convolution, horizontal pass first, then vertical, each only if that
//     dimension changes;
//   - precomputes, per output pixel, the input window [xmin, xmin+n) around the centre
//     (x+0.5)·scale, with the filter support multiplied by the scale when shrinking (scale > 1)
//     and the kernel argument divided by it (antialiasing); the window bounds are rounded with
//     (int)(v+0.5) and clipped to the image; the weights are normalised to sum to 1;
//   - converts the weights to fixed point with 22 fractional bits (PRECISION_BITS = 32−8−2),
//     rounding half away from zero;
//   - accumulates in int32 starting from 1<<21 (rounding), shifts right by 22 and clips to
//     0…255 — so the intermediate image between the passes is rounded and clipped to uint8.
//   - only rows of the source that the vertical pass needs are resampled horizontally.
// Nearest (resample=0) is not a convolution in PIL: it is an affine nearest-neighbour transform
// whose source coordinate is accumulated in float64 — reproduced as well.

// Resample filters, numbered like PIL's Image.Resampling (and HF's PILImageResampling).
const (
	ResampleNearest  = 0
	ResampleLanczos  = 1
	ResampleBilinear = 2
	ResampleBicubic  = 3
	ResampleBox      = 4
	ResampleHamming  = 5
)

type pilFilter struct {
	f       func(x float64) float64
	support float64
}

var pilFilters = map[int]pilFilter{
	ResampleBox: {func(x float64) float64 {
		if x > -0.5 && x <= 0.5 {
			return 1
		}
		return 0
	}, 0.5},
	ResampleBilinear: {func(x float64) float64 {
		x = math.Abs(x)
		if x < 1 {
			return 1 - x
		}
		return 0
	}, 1},
	ResampleHamming: {func(x float64) float64 {
		x = math.Abs(x)
		if x == 0 {
			return 1
		}
		if x >= 1 {
			return 0
		}
		x *= math.Pi
		// PIL writes 0.54f + 0.46f * cos(x): float32 constants promoted to double.
		return math.Sin(x) / x * (float64(float32(0.54)) + float64(float32(0.46))*math.Cos(x))
	}, 1},
	ResampleBicubic: {func(x float64) float64 {
		const a = -0.5
		x = math.Abs(x)
		if x < 1 {
			return ((a+2)*x-(a+3))*x*x + 1
		}
		if x < 2 {
			return (((x-5)*x+8)*x - 4) * a
		}
		return 0
	}, 2},
	ResampleLanczos: {func(x float64) float64 {
		if -3 <= x && x < 3 {
			return pilSinc(x) * pilSinc(x/3)
		}
		return 0
	}, 3},
}

func pilSinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	x *= math.Pi
	return math.Sin(x) / x
}

const precisionBits = 32 - 8 - 2

// pilCoeffs are the fixed-point weights of one resampling pass.
type pilCoeffs struct {
	ksize  int
	bounds []int   // per output pixel: xmin, n
	k      []int32 // per output pixel: ksize weights
}

// precomputeCoeffs mirrors PIL's precompute_coeffs + normalize_coeffs_8bpc for the box
// [0, inSize) mapped onto outSize pixels.
func precomputeCoeffs(inSize, outSize int, flt pilFilter) pilCoeffs {
	scale := float64(inSize) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := flt.support * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c := pilCoeffs{ksize: ksize, bounds: make([]int, 2*outSize), k: make([]int32, outSize*ksize)}
	w := make([]float64, ksize)
	for xx := 0; xx < outSize; xx++ {
		center := (float64(xx) + 0.5) * scale
		ss := 1 / filterscale
		xmin := int(center - support + 0.5) // C (int) truncates toward zero
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		n := xmax - xmin
		if n > ksize {
			n = ksize
		}
		if n < 0 {
			n = 0
		}
		ww := 0.0
		for x := 0; x < n; x++ {
			v := flt.f((float64(x+xmin) - center + 0.5) * ss)
			w[x] = v
			ww += v
		}
		k := c.k[xx*ksize : (xx+1)*ksize]
		for x := 0; x < n; x++ {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				k[x] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				k[x] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		c.bounds[2*xx], c.bounds[2*xx+1] = xmin, n
	}
	return c
}

func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// ResizePIL resizes img to w×h with PIL's Image.resize(size, resample) semantics on an 8-bit RGB
// image (reducing_gap=None, no box), bit-exact with Pillow's Resample.c (see the comment at the
// top of this file). filter is a PIL resample number (0 nearest … 5 hamming).
func ResizePIL(img *RGB, w, h, filter int) (*RGB, error) {
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("vision: resize to %d×%d: sizes must be positive", w, h)
	}
	if img.W <= 0 || img.H <= 0 {
		return nil, fmt.Errorf("vision: cannot resize an empty %d×%d image", img.W, img.H)
	}
	if img.W == w && img.H == h {
		out := NewRGB(w, h)
		copy(out.Pix, img.Pix)
		return out, nil
	}
	if filter == ResampleNearest {
		return resizeNearest(img, w, h), nil
	}
	flt, ok := pilFilters[filter]
	if !ok {
		return nil, fmt.Errorf("vision: unknown resample filter %d (PIL numbers: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming)", filter)
	}
	cur := img
	needH := w != img.W
	needV := h != img.H
	vert := precomputeCoeffs(img.H, h, flt)
	if needH {
		horiz := precomputeCoeffs(img.W, w, flt)
		// Only the source rows the vertical pass reads are resampled horizontally.
		first := vert.bounds[0]
		last := vert.bounds[2*(h-1)] + vert.bounds[2*(h-1)+1]
		if !needV {
			first, last = 0, img.H
		}
		tmp := NewRGB(w, last-first)
		horizontalPass(tmp, img, first, horiz)
		if needV {
			for i := 0; i < h; i++ {
				vert.bounds[2*i] -= first
			}
		}
		cur = tmp
	}
	if needV {
		out := NewRGB(w, h)
		verticalPass(out, cur, vert)
		cur = out
	}
	return cur, nil
}

func horizontalPass(dst, src *RGB, offset int, c pilCoeffs) {
	for yy := 0; yy < dst.H; yy++ {
		srow := src.Pix[(yy+offset)*src.W*3:]
		drow := dst.Pix[yy*dst.W*3:]
		for xx := 0; xx < dst.W; xx++ {
			xmin, n := c.bounds[2*xx], c.bounds[2*xx+1]
			k := c.k[xx*c.ksize : xx*c.ksize+n]
			s0, s1, s2 := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
			p := srow[xmin*3:]
			for x, kv := range k {
				s0 += int32(p[3*x]) * kv
				s1 += int32(p[3*x+1]) * kv
				s2 += int32(p[3*x+2]) * kv
			}
			drow[3*xx], drow[3*xx+1], drow[3*xx+2] = clip8(s0), clip8(s1), clip8(s2)
		}
	}
}

func verticalPass(dst, src *RGB, c pilCoeffs) {
	stride := src.W * 3
	for yy := 0; yy < dst.H; yy++ {
		ymin, n := c.bounds[2*yy], c.bounds[2*yy+1]
		k := c.k[yy*c.ksize : yy*c.ksize+n]
		drow := dst.Pix[yy*dst.W*3:]
		for xx := 0; xx < dst.W*3; xx += 3 {
			s0, s1, s2 := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
			for y, kv := range k {
				p := src.Pix[(ymin+y)*stride+xx:]
				s0 += int32(p[0]) * kv
				s1 += int32(p[1]) * kv
				s2 += int32(p[2]) * kv
			}
			drow[xx], drow[xx+1], drow[xx+2] = clip8(s0), clip8(s1), clip8(s2)
		}
	}
}

// resizeNearest is PIL's nearest-neighbour resize (ImagingScaleAffine): the source coordinate
// starts at scale/2 and is accumulated by repeated float64 addition, then truncated.
func resizeNearest(img *RGB, w, h int) *RGB {
	ax := float64(img.W) / float64(w)
	ay := float64(img.H) / float64(h)
	xin := make([]int, w)
	xo := ax * 0.5
	for x := 0; x < w; x++ {
		xin[x] = min(max(int(xo), 0), img.W-1)
		xo += ax
	}
	out := NewRGB(w, h)
	yo := ay * 0.5
	for y := 0; y < h; y++ {
		yi := min(max(int(yo), 0), img.H-1)
		yo += ay
		srow := img.Pix[yi*img.W*3:]
		drow := out.Pix[y*w*3:]
		for x := 0; x < w; x++ {
			copy(drow[3*x:3*x+3], srow[3*xin[x]:])
		}
	}
	return out
}
