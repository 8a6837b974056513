package vision

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"path/filepath"
	"testing"
)

func TestToRGBTypes(t *testing.T) {
	rect := image.Rect(0, 0, 2, 1)
	nrgba := image.NewNRGBA(rect)
	nrgba.Pix = []uint8{84, 87, 44, 0, 200, 100, 50, 128} // alpha dropped, colour kept
	rgba := image.NewRGBA(rect)
	rgba.Pix = []uint8{100, 50, 0, 128, 10, 20, 30, 255} // premultiplied: 100/128·255 → 199
	g16 := image.NewGray16(rect)
	g16.Pix = []uint8{0x01, 0x2c, 0x00, 0xc8} // 300 clips to 255 as PIL's I→RGB; 200 stays
	n64 := image.NewNRGBA64(rect)
	n64.Pix = []uint8{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0, 0, 0xff, 0xff, 0, 0, 0x80, 0x01, 0xff, 0xff}
	pal := image.NewPaletted(rect, color.Palette{color.NRGBA{1, 2, 3, 0}, color.RGBA{4, 5, 6, 255}})
	pal.Pix = []uint8{0, 1}
	cmyk := image.NewCMYK(rect)
	cmyk.Pix = []uint8{0, 0, 0, 0, 255, 128, 0, 64}
	gray := image.NewGray(rect)
	gray.Pix = []uint8{7, 250}
	sub := image.NewNRGBA(image.Rect(0, 0, 4, 2)).SubImage(image.Rect(1, 1, 3, 2)).(*image.NRGBA)
	sub.Pix[0], sub.Pix[1], sub.Pix[2] = 9, 8, 7 // pixel (1,1) of the parent
	ycc := image.NewYCbCr(rect, image.YCbCrSubsampleRatio444)
	ycc.Y[0], ycc.Cb[0], ycc.Cr[0] = 128, 128, 128
	ycc.Y[1], ycc.Cb[1], ycc.Cr[1] = 76, 85, 255 // ≈ pure red
	tests := []struct {
		name string
		img  image.Image
		want []uint8
	}{
		{"NRGBA drops alpha", nrgba, []uint8{84, 87, 44, 200, 100, 50}},
		{"RGBA un-premultiplies", rgba, []uint8{199, 99, 0, 10, 20, 30}},
		{"Gray16 clips like PIL mode I", g16, []uint8{255, 255, 255, 200, 200, 200}},
		{"NRGBA64 high byte", n64, []uint8{0x12, 0x56, 0x9a, 0xff, 0x00, 0x80}},
		{"Paletted keeps stored colour", pal, []uint8{1, 2, 3, 4, 5, 6}},
		{"CMYK as Pillow", cmyk, []uint8{255, 255, 255, 0, 95, 191}},
		{"Gray replicated", gray, []uint8{7, 7, 7, 250, 250, 250}},
		{"sub-image origin", sub, []uint8{9, 8, 7, 0, 0, 0}},
		{"YCbCr libjpeg conversion", ycc, []uint8{128, 128, 128, 254, 0, 0}},
		{"RGB copy", &RGB{W: 2, H: 1, Pix: []uint8{1, 2, 3, 4, 5, 6}}, []uint8{1, 2, 3, 4, 5, 6}},
		{"generic (Alpha16) via At", image.NewAlpha16(rect), []uint8{0, 0, 0, 0, 0, 0}},
	}
	for _, tc := range tests {
		got := ToRGB(tc.img)
		if got.W != 2 || got.H != 1 || !bytes.Equal(got.Pix, tc.want) {
			t.Errorf("%s: got %d×%d %v, want %v", tc.name, got.W, got.H, got.Pix, tc.want)
		}
	}
	// Pillow's cmyk2rgb on the second CMYK pixel: nk = 191; R = 191 − round(255·191/255) = 0,
	// G = 191 − round(128·191/255) = 95, B = 191.
	m := &RGB{W: 1, H: 1, Pix: []uint8{1, 2, 3}}
	if c := m.At(0, 0); c != (color.RGBA{1, 2, 3, 255}) || m.At(1, 0) != (color.RGBA{}) || m.Bounds() != image.Rect(0, 0, 1, 1) {
		t.Errorf("RGB image.Image methods wrong: %v %v", c, m.Bounds())
	}
}

func TestTIFFOrientationParser(t *testing.T) {
	build := func(bo binary.ByteOrder, typ uint16, val uint32, prefix string) []byte {
		var b bytes.Buffer
		b.WriteString(prefix)
		binary.Write(&b, bo, uint16(42))
		binary.Write(&b, bo, uint32(8))
		binary.Write(&b, bo, uint16(2))
		for _, e := range []struct{ tag, typ uint16 }{{0x010f, 2}, {0x0112, typ}} {
			binary.Write(&b, bo, e.tag)
			binary.Write(&b, bo, e.typ)
			binary.Write(&b, bo, uint32(1))
			if e.tag == 0x0112 && typ == 3 && bo == binary.BigEndian {
				binary.Write(&b, bo, uint16(val))
				binary.Write(&b, bo, uint16(0))
			} else {
				binary.Write(&b, bo, val)
			}
		}
		return b.Bytes()
	}
	tests := []struct {
		name string
		b    []byte
		want int
	}{
		{"little-endian SHORT", build(binary.LittleEndian, 3, 6, "II"), 6},
		{"big-endian SHORT", build(binary.BigEndian, 3, 8, "MM"), 8},
		{"LONG", build(binary.LittleEndian, 4, 3, "II"), 3},
		{"out of range", build(binary.LittleEndian, 3, 9, "II"), 0},
		{"wrong type", build(binary.LittleEndian, 5, 6, "II"), 0},
		{"bad magic", build(binary.LittleEndian, 3, 6, "XX"), 0},
		{"truncated", build(binary.LittleEndian, 3, 6, "II")[:20], 0},
		{"empty", nil, 0},
	}
	for _, tc := range tests {
		if got := tiffOrientation(tc.b); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// IFD offset pointing outside, and a huge entry count, must not read out of bounds.
	bad := build(binary.LittleEndian, 3, 6, "II")
	binary.LittleEndian.PutUint32(bad[4:], 0xfffffff0)
	if tiffOrientation(bad) != 0 {
		t.Error("offset outside accepted")
	}
	bad = build(binary.LittleEndian, 3, 6, "II")
	binary.LittleEndian.PutUint16(bad[8:], 0xffff)
	if tiffOrientation(bad) != 6 {
		t.Error("entry count larger than the data should still find the tag present")
	}
}

func TestOrientMapping(t *testing.T) {
	// 3×2 image with distinct pixels; expected layouts follow PIL's Image.transpose.
	src := &RGB{W: 3, H: 2, Pix: []uint8{1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0, 5, 0, 0, 6, 0, 0}}
	// src: 1 2 3 / 4 5 6
	want := map[int][]uint8{
		1: {1, 2, 3, 4, 5, 6},
		2: {3, 2, 1, 6, 5, 4}, // mirror
		3: {6, 5, 4, 3, 2, 1}, // 180
		4: {4, 5, 6, 1, 2, 3}, // flip
		5: {1, 4, 2, 5, 3, 6}, // transpose (2×3)
		6: {4, 1, 5, 2, 6, 3}, // 90° clockwise
		7: {6, 3, 5, 2, 4, 1}, // transverse
		8: {3, 6, 2, 5, 1, 4}, // 90° counter-clockwise
		0: {1, 2, 3, 4, 5, 6}, // no tag
	}
	for o, w := range want {
		got := orient(src, o)
		var r []uint8
		for i := 0; i < len(got.Pix); i += 3 {
			r = append(r, got.Pix[i])
		}
		if !bytes.Equal(r, w) {
			t.Errorf("orientation %d: %v, want %v", o, r, w)
		}
		if o >= 5 && (got.W != 2 || got.H != 3) {
			t.Errorf("orientation %d: %d×%d", o, got.W, got.H)
		}
	}
}

// TestGoJPEGDecoderDifference measures what the fallback path (Go's image/jpeg, whose IDCT is
// not libjpeg's) would give, against PIL, with libjpeg-style chroma upsampling and with the plain
// image.Image conversion a naive port would use. It documents why the project has its own decoder.
func TestGoJPEGDecoderDifference(t *testing.T) {
	c := openGolden(t, "decoded.safetensors")
	procs := loadGoldenProcs(t)
	for _, tc := range goldenImages {
		if tc.lossless || tc.loadImage {
			continue
		}
		data := readFile(t, filepath.Join(imagesDir, tc.file))
		img, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		var ours *RGB
		if y, ok := img.(*image.YCbCr); ok {
			ours = jpegYCbCrToRGB(y)
		} else {
			ours = ToRGB(img)
		}
		naive := NewRGB(ours.W, ours.H)
		for y := 0; y < ours.H; y++ {
			for x := 0; x < ours.W; x++ {
				cc := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
				i := (y*ours.W + x) * 3
				naive.Pix[i], naive.Pix[i+1], naive.Pix[i+2] = cc.R, cc.G, cc.B
			}
		}
		want := goldenRGB(t, c, tc.key)
		m1, a1, _ := diffU8(ours.Pix, want.Pix)
		m2, a2, _ := diffU8(naive.Pix, want.Pix)
		line := ""
		for _, gp := range procs {
			g := gp.proc.Preprocess(ours)
			w := gp.proc.Normalize(goldenRGB(t, gp.u8, tc.key))
			mx := 0.0
			for i := range g {
				mx = math.Max(mx, math.Abs(float64(g[i]-w[i])))
			}
			line += " " + gp.name + " " + ftoa(mx)
		}
		t.Logf("image/jpeg %-22s +libjpeg upsampling: max %d mean %.4f | naive At(): max %2d mean %.4f | preprocess max|Δ|:%s",
			tc.key, m1, a1, m2, a2, line)
		if m1 > 4 || a1 > 0.06 {
			t.Errorf("%s: the image/jpeg fallback drifted further than measured (max %d, mean %.4f)", tc.key, m1, a1)
		}
	}
}
