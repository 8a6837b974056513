package vision

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// allocDuring returns the bytes allocated while f runs (runtime.MemStats.TotalAlloc delta), an
// upper bound on the extra heap f needed at its peak.
func allocDuring(f func()) uint64 {
	runtime.GC()
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

func pngChunk(typ string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, uint32(len(data)))
	b.WriteString(typ)
	b.Write(data)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	return b.Bytes()
}

// craftPNG builds a PNG with the given header and an IDAT holding rows rows of zeros (each with
// its filter byte), compressed: a "zip bomb" when the image is large.
func craftPNG(t testing.TB, w, h uint32, depth, ctype byte, rows int, rowBytes int) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = depth, ctype
	b.Write(pngChunk("IHDR", ihdr))
	if rows > 0 {
		var z bytes.Buffer
		zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
		row := make([]byte, 1+rowBytes)
		for i := 0; i < rows; i++ {
			zw.Write(row)
		}
		zw.Close()
		b.Write(pngChunk("IDAT", z.Bytes()))
	}
	b.Write(pngChunk("IEND", nil))
	return b.Bytes()
}

func patchJPEGSize(t testing.TB, data []byte, w, h uint16) []byte {
	t.Helper()
	out := append([]byte(nil), data...)
	for i := 2; i+9 < len(out); {
		m := out[i+1]
		l := int(binary.BigEndian.Uint16(out[i+2:]))
		if m == 0xC0 || m == 0xC2 {
			binary.BigEndian.PutUint16(out[i+5:], h)
			binary.BigEndian.PutUint16(out[i+7:], w)
			return out
		}
		i += 2 + l
	}
	t.Fatal("no SOF found")
	return nil
}

func craftTIFF(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("II*\x00")
	binary.Write(&b, binary.LittleEndian, uint32(8))
	type ent struct {
		tag, typ uint16
		val      uint32
	}
	ents := []ent{{256, 4, w}, {257, 4, h}, {258, 3, 8}, {259, 3, 1}, {262, 3, 1}, {273, 4, 200}, {277, 3, 1}, {278, 4, h}, {279, 4, w * h}}
	binary.Write(&b, binary.LittleEndian, uint16(len(ents)))
	for _, e := range ents {
		binary.Write(&b, binary.LittleEndian, e.tag)
		binary.Write(&b, binary.LittleEndian, e.typ)
		binary.Write(&b, binary.LittleEndian, uint32(1))
		binary.Write(&b, binary.LittleEndian, e.val)
	}
	binary.Write(&b, binary.LittleEndian, uint32(0))
	b.Write(make([]byte, 64))
	return b.Bytes()
}

func craftBMP(w, h int32) []byte {
	var b bytes.Buffer
	b.WriteString("BM")
	for _, v := range []any{uint32(54 + 64), uint32(0), uint32(54), uint32(40), w, h, uint16(1), uint16(24),
		uint32(0), uint32(0), int32(2835), int32(2835), uint32(0), uint32(0)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.Write(make([]byte, 64))
	return b.Bytes()
}

func craftWebPVP8X(w, h uint32) []byte {
	chunk := []byte("VP8X")
	chunk = binary.LittleEndian.AppendUint32(chunk, 10)
	chunk = append(chunk, 0, 0, 0, 0)
	chunk = append(chunk, byte(w-1), byte((w-1)>>8), byte((w-1)>>16), byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
	out := []byte("RIFF")
	out = binary.LittleEndian.AppendUint32(out, uint32(4+len(chunk)))
	out = append(out, "WEBP"...)
	return append(out, chunk...)
}

func manyFrameGIF(t testing.TB, frames, side int) ([]byte, *image.Paletted) {
	t.Helper()
	pal := color.Palette{color.RGBA{10, 20, 30, 255}, color.RGBA{200, 100, 50, 255}, color.RGBA{0, 255, 0, 255}}
	g := &gif.GIF{}
	for f := 0; f < frames; f++ {
		m := image.NewPaletted(image.Rect(0, 0, side, side), pal)
		for i := range m.Pix {
			m.Pix[i] = uint8((i/side + i%side + f) % 3)
		}
		g.Image = append(g.Image, m)
		g.Delay = append(g.Delay, 1)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), g.Image[0]
}

func TestHostileInputs(t *testing.T) {
	cat := readFile(t, filepath.Join(imagesDir, "cat_chelsea.jpg"))
	small := Limits{MaxBytes: 1 << 20, MaxPixels: 4_000_000}
	const mib = 1 << 20
	tests := []struct {
		name     string
		data     []byte
		lim      Limits
		kind     error
		msg      []string
		maxAlloc uint64
	}{
		{"empty body", nil, DefaultLimits(), ErrEmpty, []string{"empty"}, mib},
		{"text file named .jpg", []byte("<!DOCTYPE html><html><body>not found</body></html>"), DefaultLimits(),
			ErrUnsupportedFormat, []string{"looks like text", "JPEG, PNG"}, mib},
		{"binary garbage", []byte{0, 1, 2, 3, 0xfe, 0x80, 7, 9}, DefaultLimits(), ErrUnsupportedFormat, []string{"00 01 02 03"}, mib},
		{"one non-ASCII byte", []byte{0x89}, DefaultLimits(), ErrUnsupportedFormat, []string{"bytes 89, which match no"}, mib},
		{"text cut inside a character", []byte("abcdefghijklmnoä and more"), DefaultLimits(), ErrUnsupportedFormat, []string{"looks like text"}, mib},
		{"over MaxBytes", cat, Limits{MaxBytes: 10_000}, ErrTooLarge, []string{"35042 bytes, over the 10000 bytes limit", "--max-image-bytes"}, mib},
		{"PNG claiming 50000×50000", craftPNG(t, 50000, 50000, 8, 6, 0, 0), DefaultLimits(),
			ErrTooLarge, []string{"50000×50000 = 2500 MP, over the 40 MP limit", "--max-image-pixels"}, mib},
		{"zip-bomb PNG 8000×8000 over the pixel limit", craftPNG(t, 8000, 8000, 8, 0, 8000, 8000), DefaultLimits(),
			ErrTooLarge, []string{"8000×8000 = 64 MP"}, mib},
		{"zip-bomb PNG 2000×2000 one pixel over a lowered limit", craftPNG(t, 2000, 2000, 8, 2, 2000, 6000),
			Limits{MaxPixels: 3_999_999}, ErrTooLarge, []string{"4.0 MP"}, mib},
		{"PNG header claims 6000×6000 RGBA with 40 bytes of data", craftPNG(t, 6000, 6000, 8, 6, 1, 0), DefaultLimits(),
			ErrCorrupt, []string{"truncated", "cannot hold"}, mib},
		{"PNG cut inside IHDR", craftPNG(t, 10, 10, 8, 2, 10, 30)[:20], DefaultLimits(), ErrCorrupt, []string{"PNG header"}, mib},
		{"truncated PNG", craftPNG(t, 300, 300, 8, 2, 300, 900)[:60], DefaultLimits(), ErrCorrupt, []string{"PNG"}, mib},
		{"truncated JPEG", readFile(t, filepath.Join(imagesDir, "cat_chelsea.truncated.jpg")), DefaultLimits(),
			ErrCorrupt, []string{"truncated"}, 4 * mib},
		{"JPEG header claims 6000×6000 in 35 KB", patchJPEGSize(t, cat, 6000, 6000), DefaultLimits(),
			ErrCorrupt, []string{"truncated"}, mib},
		{"JPEG header claims 60000×60000", patchJPEGSize(t, cat, 60000, 60000), DefaultLimits(),
			ErrTooLarge, []string{"60000×60000 = 3600 MP"}, mib},
		{"JPEG with only SOI", []byte{0xFF, 0xD8, 0xFF}, DefaultLimits(), ErrCorrupt, []string{"JPEG header"}, mib},
		{"TIFF claiming 100000×100000", craftTIFF(100000, 100000), DefaultLimits(), ErrTooLarge, []string{"100000×100000"}, mib},
		{"BMP claiming 100000×100000", craftBMP(100000, 100000), DefaultLimits(), ErrTooLarge, []string{"100000×100000"}, mib},
		{"BMP claiming 1900×1900 with no pixels", craftBMP(1900, 1900), small, ErrCorrupt, []string{"BMP", "truncated"}, mib},
		{"WebP canvas 16384×16384", craftWebPVP8X(16384, 16384), DefaultLimits(), ErrTooLarge, []string{"16384×16384 = 268 MP"}, mib},
		{"HEIC file", append([]byte("\x00\x00\x00\x18ftypheic"), make([]byte, 20)...), DefaultLimits(), ErrUnsupportedFormat, []string{`"heic"`, "convert it"}, mib},
		{"animated WebP", func() []byte { b := craftWebPVP8X(64, 64); b[20] |= 0x02; return b }(), DefaultLimits(), ErrUnsupportedFormat, []string{"animated WebP"}, mib},
		{"GIF header only", []byte("GIF89a\x10\x00\x10\x00\x00\x00\x00"), DefaultLimits(), ErrCorrupt, []string{"GIF"}, mib},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			var img *RGB
			alloc := allocDuring(func() { img, err = Decode(tc.data, tc.lim) })
			if err == nil {
				t.Fatalf("decoded a %d×%d image, want an error", img.W, img.H)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %q does not wrap %v", err, tc.kind)
			}
			for _, m := range tc.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			if alloc > tc.maxAlloc {
				t.Errorf("allocated %.1f MiB, want ≤ %.1f MiB", float64(alloc)/mib, float64(tc.maxAlloc)/mib)
			}
			t.Logf("%.2f MiB allocated; %v", float64(alloc)/mib, err)
		})
	}
}

// TestBombsWithinLimitsStayBounded decodes images that are legal but expand enormously from a tiny
// file: memory must stay proportional to the pixel limit, under 64 MiB with a 4 MP limit.
func TestBombsWithinLimitsStayBounded(t *testing.T) {
	const limit = 64 << 20
	lim := Limits{MaxPixels: 4_000_000}
	bomb := craftPNG(t, 2000, 2000, 8, 2, 2000, 6000) // 12 MB of pixels in a ~12 KB file
	gray16 := craftPNG(t, 2000, 2000, 16, 0, 2000, 4000)
	frames, first := manyFrameGIF(t, 300, 200) // 300 frames; only the first may be decoded
	for _, tc := range []struct {
		name     string
		data     []byte
		w, h     int
		maxAlloc uint64
	}{
		{"PNG RGB 2000×2000 zeros", bomb, 2000, 2000, limit},
		{"PNG gray16 2000×2000 zeros", gray16, 2000, 2000, limit},
		{"GIF with 300 frames", frames, 200, 200, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.data) > 1_000_000 {
				t.Fatalf("test input unexpectedly large: %d bytes", len(tc.data))
			}
			var img *RGB
			var err error
			alloc := allocDuring(func() { img, err = Decode(tc.data, lim) })
			if err != nil {
				t.Fatal(err)
			}
			if img.W != tc.w || img.H != tc.h {
				t.Fatalf("decoded %d×%d", img.W, img.H)
			}
			t.Logf("%d-byte file → %d×%d, %.1f MiB allocated", len(tc.data), img.W, img.H, float64(alloc)/(1<<20))
			if alloc > tc.maxAlloc {
				t.Errorf("allocated %.1f MiB, want ≤ %.1f MiB", float64(alloc)/(1<<20), float64(tc.maxAlloc)/(1<<20))
			}
		})
	}
	// The GIF's first frame is what came back.
	img, _ := Decode(frames, lim)
	want := ToRGB(first)
	if maxD, _, _ := diffU8(img.Pix, want.Pix); maxD != 0 {
		t.Errorf("GIF: decoded image is not the first frame")
	}
}

func TestSniffIgnoresNames(t *testing.T) {
	for file, want := range map[string]string{
		"cat_chelsea.jpg": FormatJPEG, "tiny_8x8.png": FormatPNG, "coffee_paletted.gif": FormatGIF,
		"astronaut.webp": FormatWebP, "video-001.bmp": FormatBMP, "video-001.tiff": FormatTIFF,
	} {
		if got := SniffFormat(readFile(t, filepath.Join(imagesDir, file))); got != want {
			t.Errorf("%s: sniffed %q, want %q", file, got, want)
		}
	}
	for _, b := range [][]byte{nil, []byte("BMP? no"), []byte("RIFF\x00\x00\x00\x00WAVE")} {
		if got := SniffFormat(b); got != "" && !(got == FormatBMP && bytes.HasPrefix(b, []byte("BM"))) {
			t.Errorf("%q sniffed as %q", b, got)
		}
	}
}

// jpegSegments splits a JPEG after SOI into marker segments, each including its entropy-coded
// data when it is an SOS.
func jpegSegments(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var segs [][]byte
	i := 2
	for i+2 <= len(b) {
		if b[i] != 0xFF || (b[i+1] != 0xD9 && i+4 > len(b)) {
			t.Fatalf("no marker at %d", i)
		}
		m := b[i+1]
		if m == 0xD9 {
			segs = append(segs, b[i:i+2])
			return segs
		}
		end := i + 2 + int(binary.BigEndian.Uint16(b[i+2:]))
		if m == 0xDA { // entropy data runs to the next marker that is not RSTn or a stuffed byte
			for end+1 < len(b) && !(b[end] == 0xFF && b[end+1] != 0 && (b[end+1] < 0xD0 || b[end+1] > 0xD7)) {
				end++
			}
		}
		segs = append(segs, b[i:end])
		i = end
	}
	t.Fatal("no EOI")
	return nil
}

func TestJPEGScanFlood(t *testing.T) {
	src := readFile(t, filepath.Join(pilrefDir, "in", "jpeg_gray_progressive.jpg"))
	segs := jpegSegments(t, src)
	var acScan []byte
	for i, s := range segs {
		if s[1] == 0xDA && s[4] == 1 && s[7] > 0 && s[9]>>4 == 0 { // one component, Ss > 0, Ah = 0
			acScan = s
			if segs[i-1][1] == 0xC4 { // with the Huffman table it uses
				acScan = append(append([]byte(nil), segs[i-1]...), s...)
			}
		}
	}
	if acScan == nil {
		t.Fatal("no AC first scan in the progressive test file")
	}
	build := func(extra int) []byte {
		out := []byte{0xFF, 0xD8}
		for _, s := range segs[:len(segs)-1] {
			out = append(out, s...)
		}
		for i := 0; i < extra; i++ {
			out = append(out, acScan...)
		}
		return append(out, 0xFF, 0xD9)
	}
	// Repeating an AC scan is legal (it rewrites the same band): a few repeats still decode.
	if _, err := Decode(build(20), DefaultLimits()); err != nil {
		t.Fatalf("20 extra scans: %v", err)
	}
	_, err := Decode(build(maxJPEGScans), DefaultLimits())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "scans") {
		t.Fatalf("scan flood: %v", err)
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, file := range []string{"rocket.jpg", "coffee_progressive.jpg", "yellow_rose_alpha.png", "astronaut.webp"} {
		data := readFile(b, filepath.Join(imagesDir, file))
		b.Run(file, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				if _, err := Decode(data, DefaultLimits()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPreprocessCLIP(b *testing.B) {
	img, err := Decode(readFile(b, filepath.Join(imagesDir, "rocket.jpg")), DefaultLimits())
	if err != nil {
		b.Fatal(err)
	}
	p, _ := NewProcessor([]byte(`{"image_processor_type": "CLIPImageProcessor"}`))
	for i := 0; i < b.N; i++ {
		p.Preprocess(img)
	}
}

func TestInspect(t *testing.T) {
	info, err := Inspect(readFile(t, filepath.Join(imagesDir, "astronaut_exif_orientation6.jpg")), DefaultLimits())
	if err != nil || info != (Info{Format: FormatJPEG, Width: 512, Height: 384}) {
		t.Fatalf("got %+v, %v", info, err)
	}
	var alloc uint64
	alloc = allocDuring(func() { _, err = Inspect(craftPNG(t, 50000, 50000, 8, 6, 0, 0), DefaultLimits()) })
	if !errors.Is(err, ErrTooLarge) || alloc > 1<<20 {
		t.Fatalf("huge PNG: %v (%d bytes allocated)", err, alloc)
	}
	if _, err := Inspect([]byte("GIF89a"), DefaultLimits()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short GIF: %v", err)
	}
}
