package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// rawFile builds safetensors bytes from a literal header and data.
func rawFile(header string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(out, header...), data...)
}

// stTensor is one tensor for buildFile.
type stTensor struct {
	name  string
	dtype string
	shape []int
	data  []byte
}

// buildFile writes a well-formed safetensors file of tensors in order,
// with the header padded by pad spaces (to control data alignment).
func buildFile(ts []stTensor, pad int) []byte {
	hdr := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var data []byte
	for _, t := range ts {
		hdr[t.name] = map[string]any{"dtype": t.dtype, "shape": t.shape, "data_offsets": []int{len(data), len(data) + len(t.data)}}
		data = append(data, t.data...)
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		panic(err)
	}
	return rawFile(string(h)+strings.Repeat(" ", pad), data)
}

func f32Bytes(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func u16Bytes(v ...uint16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint16(b, x)
	}
	return b
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func TestOpenMalformed(t *testing.T) {
	d16 := make([]byte, 16)
	for _, tc := range []struct {
		name string
		file []byte
		want []string // besides the file name
	}{
		{"empty file", nil, []string{"truncated", "0 bytes"}},
		{"short length", []byte{1, 2, 3, 4, 5}, []string{"truncated", "5 bytes"}},
		{"header past end", append(binary.LittleEndian.AppendUint64(nil, 1000), `{"a":1}`...), []string{"header length 1000", "runs past the end"}},
		{"absurd header", append(binary.LittleEndian.AppendUint64(nil, 1<<40), `{}`...), []string{"header length 1099511627776", "exceeds"}},
		{"bad json", rawFile(`{"w": {"dtype": "F32",`, nil), []string{"invalid JSON header"}},
		{"not an object", rawFile(`[1, 2]`, nil), []string{"not a JSON object"}},
		{"trailing garbage", rawFile(`{} x`, nil), []string{"invalid JSON header"}},
		{"unknown dtype", rawFile(`{"w.weight": {"dtype": "F128", "shape": [2], "data_offsets": [0, 16]}}`, d16),
			[]string{`"w.weight"`, `unknown dtype "F128"`, "BF16", "F32"}},
		{"negative dim", rawFile(`{"w.weight": {"dtype": "F32", "shape": [-2, -2], "data_offsets": [0, 16]}}`, d16),
			[]string{`"w.weight"`, "negative dimension -2"}},
		{"offsets past end", rawFile(`{"w.weight": {"dtype": "F32", "shape": [250], "data_offsets": [0, 1000]}}`, d16),
			[]string{`"w.weight"`, "[0, 1000]", "run past the end", "16 bytes"}},
		{"offsets reversed", rawFile(`{"w.weight": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}}`, d16),
			[]string{`"w.weight"`, "[8, 4]"}},
		{"offsets negative", rawFile(`{"w.weight": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}`, d16),
			[]string{`"w.weight"`, "[-4, 0]"}},
		{"three offsets", rawFile(`{"w.weight": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}}`, d16),
			[]string{`"w.weight"`, "[begin, end]"}},
		{"overlap", rawFile(`{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}`, d16),
			[]string{`"a" [0, 8]`, `"b" [4, 12]`, "overlap"}},
		{"contained", rawFile(`{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, "b": {"dtype": "U8", "shape": [2], "data_offsets": [6, 8]}}`, d16),
			[]string{`"a"`, `"b"`, "overlap"}},
		{"wrong byte length", rawFile(`{"w.weight": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}`, d16),
			[]string{`"w.weight"`, "8 bytes", "F32", "[3]", "needs 12"}},
		{"bf16 byte length", rawFile(`{"w.weight": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 16]}}`, d16),
			[]string{`"w.weight"`, "16 bytes", "BF16", "[2 2]", "needs 8"}},
		{"duplicate name", rawFile(`{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}`, d16),
			[]string{`"a"`, "twice"}},
		{"missing dtype", rawFile(`{"w.weight": {"shape": [1], "data_offsets": [0, 4]}}`, d16),
			[]string{`"w.weight"`, "lacks dtype"}},
		{"shape not a list", rawFile(`{"w.weight": {"dtype": "F32", "shape": "4", "data_offsets": [0, 16]}}`, d16),
			[]string{`"w.weight"`, "invalid header entry"}},
		{"entry not an object", rawFile(`{"w.weight": 7}`, d16), []string{`"w.weight"`, "invalid header entry"}},
		{"huge shape", rawFile(`{"w.weight": {"dtype": "F32", "shape": [1099511627776, 1099511627776], "data_offsets": [0, 16]}}`, d16),
			[]string{`"w.weight"`, "too large"}},
		{"fractional dim", rawFile(`{"w.weight": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}`, d16),
			[]string{`"w.weight"`, "invalid header entry"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, "model.safetensors", tc.file)
			c, err := Open(dir)
			if c != nil {
				t.Fatal("Open returned a checkpoint with an error")
			}
			wantErr(t, err, append(tc.want, path)...)
		})
	}
}

func TestOpenValidEdgeCases(t *testing.T) {
	for _, tc := range []struct {
		name   string
		file   []byte
		tensor string
		shape  []int
	}{
		{"empty header", rawFile(`{}`, nil), "", nil},
		{"metadata only", rawFile(`{"__metadata__": {"format": "pt"}}`, nil), "", nil},
		{"padded header", rawFile(`{"a": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}}      `, f32Bytes(2)), "a", []int{}},
		{"zero-size tensors share an offset", rawFile(`{"e1": {"dtype": "F32", "shape": [0, 3], "data_offsets": [4, 4]},
			"e2": {"dtype": "F16", "shape": [0], "data_offsets": [4, 4]}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}`, f32Bytes(1, 2)), "e1", []int{0, 3}},
		{"gap between tensors", rawFile(`{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}`, f32Bytes(1, 2)), "a", []int{1}},
		{"unread dtypes accepted at open", rawFile(`{"a": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}, "b": {"dtype": "U64", "shape": [1], "data_offsets": [8, 16]}}`, make([]byte, 16)), "a", []int{4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "model.safetensors", tc.file)
			c, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tc.tensor != "" {
				if err := c.RequireShape(tc.tensor, tc.shape...); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	dir := t.TempDir()
	var i64 []byte
	for _, v := range []int64{-3, 0, 1 << 40} {
		i64 = binary.LittleEndian.AppendUint64(i64, uint64(v))
	}
	var i32 []byte
	for _, v := range []int32{-7, 9} {
		i32 = binary.LittleEndian.AppendUint32(i32, uint32(v))
	}
	var f64 []byte
	for _, v := range []float64{1.5, -1e-3, 1e300} {
		f64 = binary.LittleEndian.AppendUint64(f64, math.Float64bits(v))
	}
	path := writeFile(t, dir, "model.safetensors", buildFile([]stTensor{
		{"w", "F32", []int{2, 3}, f32Bytes(1, -2, 3.5, 4, 5, -6)},
		{"ids", "I64", []int{3}, i64},
		{"ids32", "I32", []int{2}, i32},
		{"img", "U8", []int{2, 2}, []byte{0, 255, 7, 9}},
		{"mask", "BOOL", []int{2}, []byte{1, 0}},
		{"d", "F64", []int{3}, f64},
		{"q", "I8", []int{2}, []byte{1, 2}},
	}, 0))
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Names(); fmt.Sprint(got) != "[d ids ids32 img mask q w]" {
		t.Fatalf("Names = %v", got)
	}
	if !c.Has("w") || c.Has("nope") {
		t.Fatal("Has")
	}
	if s := c.Shape("w"); fmt.Sprint(s) != "[2 3]" {
		t.Fatalf("Shape = %v", s)
	}
	c.Shape("w")[0] = 99 // must not change the stored shape
	if c.Shape("nope") != nil || c.Dtype("nope") != "" || c.Dtype("ids") != "I64" {
		t.Fatal("Shape/Dtype of a missing tensor")
	}
	w, err := c.Float32("w", 2, 3)
	if err != nil || fmt.Sprint(w) != "[1 -2 3.5 4 5 -6]" {
		t.Fatalf("Float32 = %v, %v", w, err)
	}
	d, err := c.Float32("d")
	if err != nil || d[0] != 1.5 || d[1] != float32(-1e-3) || !math.IsInf(float64(d[2]), 1) {
		t.Fatalf("F64 = %v, %v", d, err)
	}
	ids, shape, err := c.Int64("ids")
	if err != nil || fmt.Sprint(ids, shape) != "[-3 0 1099511627776] [3]" {
		t.Fatalf("Int64 = %v %v %v", ids, shape, err)
	}
	ids32, _, err := c.Int64("ids32")
	if err != nil || fmt.Sprint(ids32) != "[-7 9]" {
		t.Fatalf("Int64(I32) = %v %v", ids32, err)
	}
	img, shape, err := c.Uint8("img")
	if err != nil || fmt.Sprint(img, shape) != "[0 255 7 9] [2 2]" {
		t.Fatalf("Uint8 = %v %v %v", img, shape, err)
	}
	if m, _, err := c.Uint8("mask"); err != nil || fmt.Sprint(m) != "[1 0]" {
		t.Fatalf("Uint8(BOOL) = %v %v", m, err)
	}

	// Errors name the file, the tensor and what was expected.
	_, err = c.Float32("w", 3, 2)
	wantErr(t, err, path, `"w"`, "[2 3]", "expected [3 2]")
	wantErr(t, c.RequireShape("w", 6), path, `"w"`, "[2 3]", "expected [6]")
	_, err = c.Float32("missing.weight")
	wantErr(t, err, dir, `missing tensor "missing.weight"`)
	wantErr(t, c.RequireShape("missing.weight", 1), `missing tensor "missing.weight"`)
	_, err = c.Float32("ids")
	wantErr(t, err, path, `"ids"`, "dtype I64", "F32, F16, BF16, F64")
	_, err = c.Float32("q")
	wantErr(t, err, `"q"`, "dtype I8")
	_, _, err = c.Int64("w")
	wantErr(t, err, path, `"w"`, "dtype F32", "I64")
	_, _, err = c.Uint8("w")
	wantErr(t, err, path, `"w"`, "dtype F32", "U8")
	_, _, err = c.Int64("nope")
	wantErr(t, err, `missing tensor "nope"`)

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	_, err = c.Float32("w")
	wantErr(t, err, `"w"`, "after Close")
	if c.Has("w") || len(c.Names()) != 0 {
		t.Fatal("closed checkpoint still lists tensors")
	}
}

// TestF32ZeroCopy checks that an aligned F32 tensor is a view of the
// mapping and an unaligned one a correct copy.
func TestF32ZeroCopy(t *testing.T) {
	vals := []float32{1, 2, -3, 4.25}
	for _, tc := range []struct {
		name     string
		pad      int
		zeroCopy bool
	}{
		{"aligned", 0, true},
		{"unaligned", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b := buildFile([]stTensor{{"w", "F32", []int{4}, f32Bytes(vals...)}}, 0)
			// Pad the header so that data starts at the wanted alignment.
			n := binary.LittleEndian.Uint64(b)
			pad := (8 - int(8+n)%8) % 8
			pad += tc.pad
			b = buildFile([]stTensor{{"w", "F32", []int{4}, f32Bytes(vals...)}}, pad)
			writeFile(t, dir, "model.safetensors", b)
			c, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			raw := c.tensors["w"].data
			if got := uintptr(unsafe.Pointer(&raw[0])) % 4; (got == 0) != tc.zeroCopy {
				t.Fatalf("data alignment %d does not fit the case", got)
			}
			a, err := c.Float32("w", 4)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(a) != fmt.Sprint(vals) {
				t.Fatalf("values %v, want %v", a, vals)
			}
			same := unsafe.Pointer(&a[0]) == unsafe.Pointer(&raw[0])
			if same != tc.zeroCopy {
				t.Fatalf("zero-copy = %v, want %v", same, tc.zeroCopy)
			}
			b2, _ := c.Float32("w")
			if &a[0] != &b2[0] {
				t.Fatal("second Float32 call returned a different slice")
			}
		})
	}
}

// f16Ref decodes a half from its definition, in float64.
func f16Ref(h uint16) float64 {
	s := 1.0
	if h&0x8000 != 0 {
		s = -1
	}
	e := int(h>>10) & 0x1f
	m := float64(h & 0x3ff)
	switch e {
	case 0:
		return s * math.Ldexp(m/1024, -14)
	case 31:
		if m == 0 {
			return math.Inf(int(s))
		}
		return math.NaN()
	}
	return s * math.Ldexp(1+m/1024, e-15)
}

// TestF16AllValues compares every half-precision bit pattern with its
// definition (signed zeros, subnormals, infinities and NaNs included).
func TestF16AllValues(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		got, want := f16ToF32(uint16(h)), f16Ref(uint16(h))
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("f16 %#04x: got %v, want NaN", h, got)
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
			t.Fatalf("f16 %#04x: got %v, want %v", h, got, want)
		}
	}
}

func TestHalfConversions(t *testing.T) {
	for _, tc := range []struct {
		dtype string
		bits  uint16
		want  float64 // NaN means NaN
		neg   bool    // sign bit expected (for zeros)
	}{
		{"F16", 0x0000, 0, false},
		{"F16", 0x8000, 0, true},
		{"F16", 0x3c00, 1, false},
		{"F16", 0xc000, -2, true},
		{"F16", 0x3555, 0.333251953125, false},
		{"F16", 0x7bff, 65504, false},
		{"F16", 0x0001, 5.960464477539063e-08, false}, // smallest subnormal 2^-24
		{"F16", 0x03ff, 6.097555160522461e-05, false}, // largest subnormal
		{"F16", 0x8001, -5.960464477539063e-08, true},
		{"F16", 0x0400, 6.103515625e-05, false}, // smallest normal 2^-14
		{"F16", 0x7c00, math.Inf(1), false},
		{"F16", 0xfc00, math.Inf(-1), true},
		{"F16", 0x7e00, math.NaN(), false},
		{"F16", 0x7c01, math.NaN(), false}, // signalling NaN stays NaN
		{"BF16", 0x0000, 0, false},
		{"BF16", 0x8000, 0, true},
		{"BF16", 0x3f80, 1, false},
		{"BF16", 0xc049, -3.140625, true},
		{"BF16", 0x7f7f, 3.3895313892515355e+38, false},
		{"BF16", 0x0001, 9.183549615799121e-41, false}, // subnormal 2^-133
		{"BF16", 0x0080, 1.1754943508222875e-38, false},
		{"BF16", 0x7f80, math.Inf(1), false},
		{"BF16", 0xff80, math.Inf(-1), true},
		{"BF16", 0x7fc0, math.NaN(), false},
	} {
		t.Run(fmt.Sprintf("%s_%04x", tc.dtype, tc.bits), func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "model.safetensors", buildFile([]stTensor{{"h", tc.dtype, []int{1}, u16Bytes(tc.bits)}}, 0))
			c, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			v, err := c.Float32("h", 1)
			if err != nil {
				t.Fatal(err)
			}
			got := float64(v[0])
			if math.IsNaN(tc.want) {
				if !math.IsNaN(got) {
					t.Fatalf("got %v, want NaN", got)
				}
				return
			}
			if got != tc.want || math.Signbit(got) != tc.neg {
				t.Fatalf("got %v (sign %v), want %v (sign %v)", got, math.Signbit(got), tc.want, tc.neg)
			}
		})
	}
}

// TestConvertOnce checks that F16/BF16 tensors are converted once and
// cached, also under concurrent first use.
func TestConvertOnce(t *testing.T) {
	dir := t.TempDir()
	n := 1000
	var h, bf []uint16
	for i := 0; i < n; i++ {
		h = append(h, uint16(0x3c00+i))
		bf = append(bf, uint16(0x3f80+i))
	}
	writeFile(t, dir, "model.safetensors", buildFile([]stTensor{
		{"h", "F16", []int{10, 100}, u16Bytes(h...)},
		{"b", "BF16", []int{n}, u16Bytes(bf...)},
	}, 0))
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, name := range []string{"h", "b"} {
		var wg sync.WaitGroup
		got := make([][]float32, 8)
		for g := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[g], _ = c.Float32(name)
			}()
		}
		wg.Wait()
		for g := range got {
			if len(got[g]) != n || &got[g][0] != &got[0][0] {
				t.Fatalf("%s: call %d returned a different slice", name, g)
			}
		}
		for i := 0; i < n; i++ {
			var want float32
			if name == "h" {
				want = float32(f16Ref(h[i]))
			} else {
				want = math.Float32frombits(uint32(bf[i]) << 16)
			}
			if got[0][i] != want {
				t.Fatalf("%s[%d] = %v, want %v", name, i, got[0][i], want)
			}
		}
	}
}

// writeShards writes two shards and an index for tensors a (shard 1), b and
// c (shard 2); edit may change the index's weight map or shard contents.
func writeShards(t *testing.T, dir string, editMap func(map[string]string), extra2 []stTensor) {
	t.Helper()
	writeFile(t, dir, "model-00001-of-00002.safetensors", buildFile([]stTensor{{"a", "F32", []int{2}, f32Bytes(1, 2)}}, 0))
	writeFile(t, dir, "model-00002-of-00002.safetensors", buildFile(append([]stTensor{
		{"b", "F16", []int{1}, u16Bytes(0x3c00)},
		{"c", "F32", []int{1, 1}, f32Bytes(7)},
	}, extra2...), 0))
	wm := map[string]string{"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}
	if editMap != nil {
		editMap(wm)
	}
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 16}, "weight_map": wm})
	writeFile(t, dir, "model.safetensors.index.json", idx)
}

func TestSharded(t *testing.T) {
	dir := t.TempDir()
	writeShards(t, dir, nil, nil)
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Names(); fmt.Sprint(got) != "[a b c]" {
		t.Fatalf("Names = %v", got)
	}
	for name, want := range map[string]string{"a": "[1 2]", "b": "[1]", "c": "[7]"} {
		v, err := c.Float32(name)
		if err != nil || fmt.Sprint(v) != want {
			t.Fatalf("%s = %v %v, want %s", name, v, err, want)
		}
	}
	_, err = c.Float32("c", 1)
	wantErr(t, err, "model-00002-of-00002.safetensors", `"c"`, "[1 1]")

	// model.safetensors wins over the index when both exist (as in HF).
	writeFile(t, dir, "model.safetensors", buildFile([]stTensor{{"only", "F32", []int{1}, f32Bytes(3)}}, 0))
	c2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if fmt.Sprint(c2.Names()) != "[only]" {
		t.Fatalf("Names = %v", c2.Names())
	}
}

func TestShardedErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(map[string]string)
		extra2 []stTensor
		index  string // replaces the index file when not empty
		want   []string
	}{
		{name: "tensor missing from its shard", edit: func(m map[string]string) { m["d.weight"] = "model-00002-of-00002.safetensors" },
			want: []string{"model-00002-of-00002.safetensors", `"d.weight"`, "not in it"}},
		{name: "tensor mapped to the wrong shard", edit: func(m map[string]string) { m["c"] = "model-00001-of-00002.safetensors" },
			want: []string{"model-00001-of-00002.safetensors", `"c"`, "not in it"}},
		{name: "duplicate across shards", extra2: []stTensor{{"a", "F32", []int{1}, f32Bytes(5)}},
			want: []string{`"a"`, "two shards", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}},
		{name: "missing shard file", edit: func(m map[string]string) { m["z"] = "model-00003-of-00003.safetensors" },
			want: []string{"model-00003-of-00003.safetensors", `"z"`, "cannot be opened"}},
		{name: "path escape", edit: func(m map[string]string) { m["z"] = "../../etc/passwd" },
			want: []string{`"z"`, `"../../etc/passwd"`, "not a file name"}},
		{name: "bad index json", index: "{\n  \"weight_map\": {\n    \"a\": 3\n  }\n}",
			want: []string{"model.safetensors.index.json", `key "weight_map"`, "number"}},
		{name: "index syntax", index: "{\n  \"weight_map\": {,}\n}",
			want: []string{"model.safetensors.index.json", "line 2, column"}},
		{name: "empty weight map", index: `{"metadata": {}}`,
			want: []string{"model.safetensors.index.json", "weight_map"}},
		{name: "corrupt shard", extra2: nil, edit: func(m map[string]string) {}, index: "",
			want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeShards(t, dir, tc.edit, tc.extra2)
			if tc.index != "" {
				writeFile(t, dir, "model.safetensors.index.json", []byte(tc.index))
			}
			if tc.want == nil { // corrupt the second shard: truncated data
				p := filepath.Join(dir, "model-00002-of-00002.safetensors")
				b, _ := os.ReadFile(p)
				writeFile(t, dir, filepath.Base(p), b[:len(b)-3])
				tc.want = []string{p, "run past the end"}
			}
			c, err := Open(dir)
			if c != nil {
				t.Fatal("Open returned a checkpoint with an error")
			}
			wantErr(t, err, tc.want...)
		})
	}
}

func TestOpenFolders(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		want  []string
	}{
		{"pytorch only", []string{"config.json", "pytorch_model.bin"}, []string{"pytorch_model.bin", "PyTorch", "safe_serialization=True"}},
		{"sharded pytorch", []string{"pytorch_model-00001-of-00002.bin", "pytorch_model.bin.index.json"}, []string{"PyTorch", "safetensors"}},
		{"empty", []string{"config.json"}, []string{"neither model.safetensors nor model.safetensors.index.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				writeFile(t, dir, f, []byte("x"))
			}
			_, err := Open(dir)
			wantErr(t, err, append(tc.want, dir)...)
		})
	}
	_, err := Open(filepath.Join(t.TempDir(), "absent"))
	wantErr(t, err, "absent")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
	dir := t.TempDir()
	p := writeFile(t, dir, "model.safetensors", buildFile(nil, 0))
	_, err = Open(p)
	wantErr(t, err, p, "not a directory", "OpenFile")
	c, err := OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	// A dangling model.safetensors symlink (an incomplete git-lfs or hub
	// cache download) is reported as such, not as a missing checkpoint.
	dir = t.TempDir()
	if err := os.Symlink(filepath.Join(dir, "blobs", "missing"), filepath.Join(dir, "model.safetensors")); err != nil {
		t.Skip("no symlinks:", err)
	}
	_, err = Open(dir)
	wantErr(t, err, filepath.Join(dir, "model.safetensors"))
}

// TestGoldenCheckpoints opens every golden model and golden file and reads
// every tensor, as the model packages will.
func TestGoldenCheckpoints(t *testing.T) {
	dirs, err := filepath.Glob("../../testdata/golden/*/model.safetensors")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden models found: %v", err)
	}
	files, _ := filepath.Glob("../../testdata/golden/*/golden.safetensors")
	for _, p := range append(dirs, files...) {
		t.Run(p, func(t *testing.T) {
			var c *Checkpoint
			var err error
			if filepath.Base(p) == "model.safetensors" {
				c, err = Open(filepath.Dir(p))
			} else {
				c, err = OpenFile(p)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			names := c.Names()
			if !sort.StringsAreSorted(names) || len(names) == 0 {
				t.Fatalf("names %v", names)
			}
			for _, n := range names {
				switch c.Dtype(n) {
				case "F32":
					v, err := c.Float32(n, c.Shape(n)...)
					if err != nil {
						t.Fatal(err)
					}
					count := 1
					for _, d := range c.Shape(n) {
						count *= d
					}
					if len(v) != count {
						t.Fatalf("%s: %d values for shape %v", n, len(v), c.Shape(n))
					}
				case "I64":
					if _, _, err := c.Int64(n); err != nil {
						t.Fatal(err)
					}
				case "U8":
					if _, _, err := c.Uint8(n); err != nil {
						t.Fatal(err)
					}
				default:
					t.Fatalf("%s: unexpected dtype %s", n, c.Dtype(n))
				}
			}
		})
	}
}

func TestFromFloat32(t *testing.T) {
	data := []float32{1, 2, 3}
	c := FromFloat32(map[string]MemTensor{
		"ok":    {Shape: []int{3}, Data: data},
		"bad":   {Shape: []int{2, 2}, Data: data},
		"empty": {Shape: []int{0}},
	})
	v, err := c.Float32("ok", 3)
	if err != nil || &v[0] != &data[0] {
		t.Fatalf("Float32 = %v %v (want the caller's slice)", v, err)
	}
	_, err = c.Float32("bad")
	wantErr(t, err, `"bad"`, "3 values", "[2 2]")
	if v, err := c.Float32("empty", 0); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("empty = %v %v", v, err)
	}
}
