package vision

import "image"

// This file reproduces what libjpeg(-turbo) does after the IDCT, which is where Go's image/jpeg
// and PIL disagree most: libjpeg upsamples subsampled chroma with a triangle ("fancy") filter and
// converts YCbCr→RGB with its own fixed-point tables, whereas image.YCbCr.At repeats the nearest
// chroma sample and uses color.YCbCrToRGB's rounding. Go's decoder gives us the chroma planes at
// their stored resolution, so we redo those two steps as libjpeg-turbo 2.1 (jdsample.c,
// jdcolor.c) does. The IDCT itself stays Go's (integer, not libjpeg's "islow"): the residual
// difference is measured in the tests (±1–2 levels on a few pixels).

// libjpeg's ycc→rgb tables (jdcolor.c build_ycc_rgb_table, SCALEBITS = 16).
var (
	jpegCrR, jpegCbB [256]int32
	jpegCrG, jpegCbG [256]int32
)

func init() {
	const scaleBits = 16
	const oneHalf = 1 << (scaleBits - 1)
	fix := func(x float64) int32 { return int32(x*(1<<scaleBits) + 0.5) }
	for i := 0; i < 256; i++ {
		x := int32(i - 128)
		jpegCrR[i] = (fix(1.40200)*x + oneHalf) >> scaleBits
		jpegCbB[i] = (fix(1.77200)*x + oneHalf) >> scaleBits
		jpegCrG[i] = -fix(0.71414) * x
		jpegCbG[i] = -fix(0.34414)*x + oneHalf
	}
}

func clampU8(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// jpegYCCToRGB converts one full-range (JFIF) YCbCr sample as libjpeg's ycc_rgb_convert does.
func jpegYCCToRGB(y, cb, cr uint8) (r, g, b uint8) {
	yy := int32(y)
	return clampU8(yy + jpegCrR[cr]),
		clampU8(yy + (jpegCbG[cb]+jpegCrG[cr])>>16),
		clampU8(yy + jpegCbB[cb])
}

// chromaPlane is one subsampled chroma plane: cw×ch samples, row stride `stride`.
type chromaPlane struct {
	pix            []uint8
	stride, cw, ch int
}

func (p chromaPlane) row(r int) []uint8 {
	if r < 0 {
		r = 0
	}
	if r >= p.ch {
		r = p.ch - 1
	}
	return p.pix[r*p.stride : r*p.stride+p.cw]
}

// subsampling returns the horizontal and vertical chroma factors of a Go subsample ratio.
func subsampling(r image.YCbCrSubsampleRatio) (hs, vs int, ok bool) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return 1, 1, true
	case image.YCbCrSubsampleRatio422:
		return 2, 1, true
	case image.YCbCrSubsampleRatio420:
		return 2, 2, true
	case image.YCbCrSubsampleRatio440:
		return 1, 2, true
	case image.YCbCrSubsampleRatio411:
		return 4, 1, true
	case image.YCbCrSubsampleRatio410:
		return 4, 2, true
	}
	return 0, 0, false
}

// jpegUpsampleRow writes output row oy (w samples) of plane p upsampled by (hs, vs) into out, as
// libjpeg-turbo's jdsample.c does with do_fancy_upsampling (its default, which PIL keeps):
// h2v1_fancy_upsample and h2v2_fancy_upsample when the plane is wider than 2 samples,
// h1v2_fancy_upsample for 1×2, plain replication (int_upsample) otherwise. Rows above/below the
// image repeat the edge row (jdmainct.c's context-row duplication). tmp needs ≥ 2·cw+4 bytes.
func jpegUpsampleRow(p chromaPlane, hs, vs, oy, w int, tmp, out []uint8) {
	cw := p.cw
	switch {
	case hs == 1 && vs == 1:
		copy(out[:w], p.row(oy))
		return
	case hs == 2 && vs == 1 && cw > 2: // h2v1 fancy
		in := p.row(oy)
		t := tmp[:2*cw]
		v0 := int(in[0])
		t[0] = in[0]
		t[1] = uint8((v0*3 + int(in[1]) + 2) >> 2)
		for c := 1; c < cw-1; c++ {
			v := int(in[c]) * 3
			t[2*c] = uint8((v + int(in[c-1]) + 1) >> 2)
			t[2*c+1] = uint8((v + int(in[c+1]) + 2) >> 2)
		}
		c := cw - 1
		t[2*c] = uint8((int(in[c])*3 + int(in[c-1]) + 1) >> 2)
		t[2*c+1] = in[c]
		copy(out[:w], t)
		return
	case hs == 2 && vs == 2 && cw > 2: // h2v2 fancy
		r := oy / 2
		near := p.row(r)
		var far []uint8
		if oy%2 == 0 {
			far = p.row(r - 1)
		} else {
			far = p.row(r + 1)
		}
		t := tmp[:2*cw]
		sum := func(c int) int { return int(near[c])*3 + int(far[c]) }
		this, next := sum(0), sum(1)
		t[0] = uint8((this*4 + 8) >> 4)
		t[1] = uint8((this*3 + next + 7) >> 4)
		last := this
		this = next
		for c := 1; c < cw-1; c++ {
			next = sum(c + 1)
			t[2*c] = uint8((this*3 + last + 8) >> 4)
			t[2*c+1] = uint8((this*3 + next + 7) >> 4)
			last, this = this, next
		}
		c := cw - 1
		t[2*c] = uint8((this*3 + last + 8) >> 4)
		t[2*c+1] = uint8((this*4 + 7) >> 4)
		copy(out[:w], t)
		return
	case hs == 1 && vs == 2: // h1v2 fancy
		r := oy / 2
		near := p.row(r)
		far, bias := p.row(r-1), 1
		if oy%2 == 1 {
			far, bias = p.row(r+1), 2
		}
		for c := 0; c < w; c++ {
			out[c] = uint8((int(near[c])*3 + int(far[c]) + bias) >> 2)
		}
		return
	}
	// Replication (h2v1/h2v2 on planes ≤ 2 wide, h4v1, h4v2).
	in := p.row(oy / vs)
	for x := 0; x < w; x++ {
		out[x] = in[x/hs]
	}
}

// jpegYCbCrToRGB converts a decoded JPEG YCbCr image to RGB as libjpeg + PIL would. It returns
// nil if the image's layout is not one it handles (the caller then falls back to ToRGB).
func jpegYCbCrToRGB(m *image.YCbCr) *RGB {
	hs, vs, ok := subsampling(m.SubsampleRatio)
	if !ok || m.Rect.Min != (image.Point{}) {
		return nil
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	cw, ch := (w+hs-1)/hs, (h+vs-1)/vs
	if cw <= 0 || ch <= 0 || m.CStride < cw || len(m.Cb) < (ch-1)*m.CStride+cw || len(m.Cr) < (ch-1)*m.CStride+cw {
		return nil
	}
	cbP := chromaPlane{m.Cb, m.CStride, cw, ch}
	crP := chromaPlane{m.Cr, m.CStride, cw, ch}
	out := NewRGB(w, h)
	tmp := make([]uint8, 2*cw+4)
	cbRow := make([]uint8, w)
	crRow := make([]uint8, w)
	for oy := 0; oy < h; oy++ {
		jpegUpsampleRow(cbP, hs, vs, oy, w, tmp, cbRow)
		jpegUpsampleRow(crP, hs, vs, oy, w, tmp, crRow)
		yRow := m.Y[oy*m.YStride : oy*m.YStride+w]
		o := out.Pix[oy*w*3 : (oy+1)*w*3]
		for x := 0; x < w; x++ {
			o[3*x], o[3*x+1], o[3*x+2] = jpegYCCToRGB(yRow[x], cbRow[x], crRow[x])
		}
	}
	return out
}
