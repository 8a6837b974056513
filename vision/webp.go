package vision

import "image"

// Lossy WebP (VP8) stores limited-range BT.601 YUV 4:2:0. golang.org/x/image/webp returns it as
// an image.YCbCr, whose At method would treat it as full-range JFIF (wrong colours by several
// levels). PIL decodes WebP through libwebp, which upsamples chroma with its "fancy" bilinear
// filter and converts with 14-bit fixed-point constants (src/dsp/yuv.h, upsampling.c); this file
// does the same. The VP8 reconstruction itself is exactly specified, so x/image's planes equal
// libwebp's.

func webpMultHi(v, coeff int32) int32 { return (v * coeff) >> 8 }

func webpClip8(v int32) uint8 {
	const mask = (256 << 6) - 1
	if v&^mask == 0 {
		return uint8(v >> 6)
	}
	if v < 0 {
		return 0
	}
	return 255
}

// webpYUVToRGB is libwebp's VP8YuvToRgb.
func webpYUVToRGB(y, u, v uint8) (r, g, b uint8) {
	yy, uu, vv := int32(y), int32(u), int32(v)
	r = webpClip8(webpMultHi(yy, 19077) + webpMultHi(vv, 26149) - 14234)
	g = webpClip8(webpMultHi(yy, 19077) - webpMultHi(uu, 6419) - webpMultHi(vv, 13320) + 8708)
	b = webpClip8(webpMultHi(yy, 19077) + webpMultHi(uu, 33050) - 17685)
	return
}

// webpUpsampleRow computes one output row of a 2×2-subsampled plane as libwebp's
// UPSAMPLE_FUNC does: `top` is the chroma row nearer to the output row when nearTop, else `cur`
// is. w output samples are written to out.
func webpUpsampleRow(top, cur []uint8, nearTop bool, w int, out []uint8) {
	tl, l := int32(top[0]), int32(cur[0])
	if nearTop {
		out[0] = uint8((3*tl + l + 2) >> 2)
	} else {
		out[0] = uint8((3*l + tl + 2) >> 2)
	}
	last := (w - 1) >> 1
	for x := 1; x <= last; x++ {
		t, uv := int32(top[x]), int32(cur[x])
		avg := tl + t + l + uv + 8
		d12 := (avg + 2*(t+l)) >> 3
		d03 := (avg + 2*(tl+uv)) >> 3
		if nearTop {
			out[2*x-1] = uint8((d12 + tl) >> 1)
			out[2*x] = uint8((d03 + t) >> 1)
		} else {
			out[2*x-1] = uint8((d03 + l) >> 1)
			out[2*x] = uint8((d12 + uv) >> 1)
		}
		tl, l = t, uv
	}
	if w&1 == 0 {
		if nearTop {
			out[w-1] = uint8((3*tl + l + 2) >> 2)
		} else {
			out[w-1] = uint8((3*l + tl + 2) >> 2)
		}
	}
}

// webpYCbCrToRGB converts x/image/webp's 4:2:0 output to RGB as libwebp's fancy RGB output does.
// It returns nil for layouts it does not handle.
func webpYCbCrToRGB(m *image.YCbCr) *RGB {
	if m.SubsampleRatio != image.YCbCrSubsampleRatio420 || m.Rect.Min != (image.Point{}) {
		return nil
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	cw, ch := (w+1)/2, (h+1)/2
	if w <= 0 || h <= 0 || m.CStride < cw || len(m.Cb) < (ch-1)*m.CStride+cw || len(m.Cr) < (ch-1)*m.CStride+cw {
		return nil
	}
	p := func(pl []uint8, r int) []uint8 {
		if r < 0 {
			r = 0
		}
		if r >= ch {
			r = ch - 1
		}
		return pl[r*m.CStride : r*m.CStride+cw]
	}
	out := NewRGB(w, h)
	u := make([]uint8, w+1)
	v := make([]uint8, w+1)
	for oy := 0; oy < h; oy++ {
		// Row 0 pairs chroma row 0 with itself; odd rows 2k−1 are the "top" of the pair
		// (chroma rows k−1, k), even rows 2k its "bottom"; the last row of an even-height
		// image pairs the last chroma row with itself (clamping gives exactly that).
		var top, cur []uint8
		var nearTop bool
		var topV, curV []uint8
		if oy%2 == 1 {
			top, cur, nearTop = p(m.Cb, (oy-1)/2), p(m.Cb, (oy+1)/2), true
			topV, curV = p(m.Cr, (oy-1)/2), p(m.Cr, (oy+1)/2)
		} else {
			top, cur = p(m.Cb, oy/2-1), p(m.Cb, oy/2)
			topV, curV = p(m.Cr, oy/2-1), p(m.Cr, oy/2)
		}
		webpUpsampleRow(top, cur, nearTop, w, u)
		webpUpsampleRow(topV, curV, nearTop, w, v)
		yRow := m.Y[oy*m.YStride : oy*m.YStride+w]
		o := out.Pix[oy*w*3 : (oy+1)*w*3]
		for x := 0; x < w; x++ {
			o[3*x], o[3*x+1], o[3*x+2] = webpYUVToRGB(yRow[x], u[x], v[x])
		}
	}
	return out
}
