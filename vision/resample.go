package vision

import (
	"fmt"
	"image"
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
// [0, inSize) mapped onto outSize pixels, for the count output pixels from start on (PIL
// computes them all; each pixel's weights depend only on its own position, so a window is exact).
func precomputeCoeffs(inSize, outSize int, flt pilFilter, start, count int) pilCoeffs {
	scale := float64(inSize) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := flt.support * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c := pilCoeffs{ksize: ksize, bounds: make([]int, 2*count), k: make([]int32, count*ksize)}
	w := make([]float64, ksize)
	for i := 0; i < count; i++ {
		xx := start + i
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
		k := c.k[i*ksize : (i+1)*ksize]
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
		c.bounds[2*i], c.bounds[2*i+1] = xmin, n
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
	return ResizePILRegion(img, w, h, filter, image.Rect(0, 0, w, h))
}

// ResizePILRegion returns only the pixels in r (clipped to the w×h output) of ResizePIL(img, w,
// h, filter), computing nothing outside it: a centre crop of a huge resize costs only the crop.
func ResizePILRegion(img *RGB, w, h, filter int, r image.Rectangle) (*RGB, error) {
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("vision: resize to %d×%d: sizes must be positive", w, h)
	}
	if img.W <= 0 || img.H <= 0 {
		return nil, fmt.Errorf("vision: cannot resize an empty %d×%d image", img.W, img.H)
	}
	r = r.Intersect(image.Rect(0, 0, w, h))
	if r.Empty() {
		return NewRGB(0, 0), nil
	}
	if img.W == w && img.H == h {
		return cropRGB(img, r), nil
	}
	if filter == ResampleNearest {
		return resizeNearest(img, w, h, r), nil
	}
	flt, ok := pilFilters[filter]
	if !ok {
		return nil, fmt.Errorf("vision: unknown resample filter %d (PIL numbers: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming)", filter)
	}
	needH := w != img.W
	needV := h != img.H
	// Source rows the output rows of r read (PIL: ybox_first … ybox_last).
	first, last := r.Min.Y, r.Max.Y
	var vert pilCoeffs
	if needV {
		vert = precomputeCoeffs(img.H, h, flt, r.Min.Y, r.Dy())
		first = vert.bounds[0]
		last = vert.bounds[2*(r.Dy()-1)] + vert.bounds[2*(r.Dy()-1)+1]
		for i := 0; i < r.Dy(); i++ {
			vert.bounds[2*i] -= first
		}
	}
	var cur *RGB
	if needH {
		horiz := precomputeCoeffs(img.W, w, flt, r.Min.X, r.Dx())
		cur = NewRGB(r.Dx(), last-first)
		horizontalPass(cur, img, first, horiz)
	} else {
		cur = cropRGB(img, image.Rect(r.Min.X, first, r.Max.X, last))
	}
	if !needV {
		return cur, nil
	}
	out := NewRGB(r.Dx(), r.Dy())
	verticalPass(out, cur, vert)
	return out, nil
}

// cropRGB copies the rectangle r (inside img) into a new image.
func cropRGB(img *RGB, r image.Rectangle) *RGB {
	out := NewRGB(r.Dx(), r.Dy())
	for y := 0; y < r.Dy(); y++ {
		copy(out.Pix[y*r.Dx()*3:(y+1)*r.Dx()*3], img.Pix[((r.Min.Y+y)*img.W+r.Min.X)*3:])
	}
	return out
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

// resizeNearest is PIL's nearest-neighbour resize (ImagingScaleAffine) restricted to the output
// rectangle r: the source coordinate starts at scale/2 and is accumulated by repeated float64
// addition (from pixel 0, as PIL does), then truncated.
func resizeNearest(img *RGB, w, h int, r image.Rectangle) *RGB {
	ax := float64(img.W) / float64(w)
	ay := float64(img.H) / float64(h)
	xin := make([]int, r.Dx())
	xo := ax * 0.5
	for x := 0; x < r.Max.X; x++ {
		if x >= r.Min.X {
			xin[x-r.Min.X] = min(max(int(xo), 0), img.W-1)
		}
		xo += ax
	}
	out := NewRGB(r.Dx(), r.Dy())
	yo := ay * 0.5
	for y := 0; y < r.Max.Y; y++ {
		if y >= r.Min.Y {
			yi := min(max(int(yo), 0), img.H-1)
			srow := img.Pix[yi*img.W*3:]
			drow := out.Pix[(y-r.Min.Y)*r.Dx()*3:]
			for x := range xin {
				copy(drow[3*x:3*x+3], srow[3*xin[x]:])
			}
		}
		yo += ay
	}
	return out
}
