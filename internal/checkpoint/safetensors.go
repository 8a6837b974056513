package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// MaxHeaderSize caps a safetensors JSON header. Real headers are a few
// hundred kilobytes even for very large models; a larger length is taken as
// a corrupt file rather than allocated.
const MaxHeaderSize = 100 << 20

// dtypeSize gives the element size in bytes of every dtype the safetensors
// format defines. A dtype not listed is rejected at open.
var dtypeSize = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
	"U16": 2, "I16": 2, "F16": 2, "BF16": 2,
	"U32": 4, "I32": 4, "F32": 4,
	"U64": 8, "I64": 8, "F64": 8,
}

func knownDtypes() string {
	out := make([]string, 0, len(dtypeSize))
	for k := range dtypeSize {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// tensor is one validated header entry; data is its bytes inside the
// file's mapping.
type tensor struct {
	name  string
	file  string
	dtype string
	shape []int
	data  []byte

	f32 []float32 // F32 view or converted copy, filled on first Float32 call
	err error     // deferred error (in-memory tensors with a bad length)

	mapped bool            // data is inside a file mapping (Evict may drop its pages)
	gen    func([]float32) // generated tensor (FromFunc): fills a new slice per call
}

// headerEntry is one tensor's JSON description.
type headerEntry struct {
	Dtype   *string  `json:"dtype"`
	Shape   *[]int64 `json:"shape"`
	Offsets *[]int64 `json:"data_offsets"`
}

// parseSafetensors validates a whole safetensors file held in buf (8-byte
// little-endian header length, JSON header, data) and returns its tensors,
// whose data slices point into buf. file names the file in errors.
func parseSafetensors(buf []byte, file string) (map[string]*tensor, error) {
	if len(buf) < 8 {
		return nil, fmt.Errorf("checkpoint: %s: truncated: %d bytes, a safetensors file starts with an 8-byte header length", file, len(buf))
	}
	n := binary.LittleEndian.Uint64(buf)
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("checkpoint: %s: header length %d exceeds the %d-byte limit (not a safetensors file, or corrupt)", file, n, MaxHeaderSize)
	}
	if n > uint64(len(buf)-8) {
		return nil, fmt.Errorf("checkpoint: %s: header length %d runs past the end of the file (%d bytes): truncated download?", file, n, len(buf))
	}
	hdr := buf[8 : 8+n]
	data := buf[8+n:]

	entries, err := decodeHeader(hdr)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %s: invalid JSON header: %w", file, err)
	}
	out := make(map[string]*tensor, len(entries))
	type span struct {
		name       string
		begin, end int64
	}
	spans := make([]span, 0, len(entries))
	for _, e := range entries {
		name := e.name
		if name == "__metadata__" {
			continue
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("checkpoint: %s: tensor %q appears twice in the header", file, name)
		}
		var h headerEntry
		if err := json.Unmarshal(e.raw, &h); err != nil {
			return nil, fmt.Errorf("checkpoint: %s: tensor %q: invalid header entry (want {\"dtype\": string, \"shape\": [ints], \"data_offsets\": [begin, end]}): %v", file, name, err)
		}
		if h.Dtype == nil || h.Shape == nil || h.Offsets == nil {
			return nil, fmt.Errorf("checkpoint: %s: tensor %q: header entry lacks dtype, shape or data_offsets", file, name)
		}
		size, ok := dtypeSize[*h.Dtype]
		if !ok {
			return nil, fmt.Errorf("checkpoint: %s: tensor %q: unknown dtype %q (safetensors dtypes: %s)", file, name, *h.Dtype, knownDtypes())
		}
		shape := make([]int, len(*h.Shape))
		count := int64(1)
		for i, d := range *h.Shape {
			if d < 0 {
				return nil, fmt.Errorf("checkpoint: %s: tensor %q: negative dimension %d in shape %v", file, name, d, *h.Shape)
			}
			if d > 0 && count > math.MaxInt64/8/d {
				return nil, fmt.Errorf("checkpoint: %s: tensor %q: shape %v is too large", file, name, *h.Shape)
			}
			count *= d
			shape[i] = int(d)
		}
		offs := *h.Offsets
		if len(offs) != 2 {
			return nil, fmt.Errorf("checkpoint: %s: tensor %q: data_offsets %v must be [begin, end]", file, name, offs)
		}
		begin, end := offs[0], offs[1]
		if begin < 0 || end < begin {
			return nil, fmt.Errorf("checkpoint: %s: tensor %q: data_offsets [%d, %d] are not 0 ≤ begin ≤ end", file, name, begin, end)
		}
		if end > int64(len(data)) {
			return nil, fmt.Errorf("checkpoint: %s: tensor %q: data_offsets [%d, %d] run past the end of the data (%d bytes after the header): truncated file?", file, name, begin, end, len(data))
		}
		if want := count * int64(size); end-begin != want {
			return nil, fmt.Errorf("checkpoint: %s: tensor %q: %d bytes of data, but dtype %s × shape %v needs %d", file, name, end-begin, *h.Dtype, shape, want)
		}
		out[name] = &tensor{name: name, file: file, dtype: *h.Dtype, shape: shape, data: data[begin:end:end]}
		spans = append(spans, span{name, begin, end})
	}
	// No two tensors may share bytes (empty tensors occupy none).
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].end < spans[j].end
	})
	var prev *span
	for i := range spans {
		s := &spans[i]
		if s.begin == s.end {
			continue
		}
		if prev != nil && s.begin < prev.end {
			return nil, fmt.Errorf("checkpoint: %s: tensors %q [%d, %d] and %q [%d, %d] overlap", file, prev.name, prev.begin, prev.end, s.name, s.begin, s.end)
		}
		prev = s
	}
	return out, nil
}

type rawEntry struct {
	name string
	raw  json.RawMessage
}

// decodeHeader reads the header's top-level JSON object as ordered
// (key, raw value) pairs, so that duplicate keys can be detected, and
// requires nothing but whitespace after it.
func decodeHeader(hdr []byte) ([]rawEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(hdr))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("header is not a JSON object")
	}
	var out []rawEntry
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("object key %v is not a string", tok)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("value of %q: %w", key, err)
		}
		out = append(out, rawEntry{key, raw})
	}
	if _, err := dec.Token(); err != nil { // closing '}'
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("unexpected data after the header object")
	}
	return out, nil
}
