// Package checkpoint reads Hugging Face checkpoint folders: safetensors
// files (single or sharded through model.safetensors.index.json) and the
// JSON configuration files beside them.
package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// Checkpoint is an opened set of weights.
type Checkpoint struct {
	dir     string
	tensors map[string]tensorRef
}

type tensorRef struct {
	file  string
	dtype string
	shape []int
	data  []byte
}

// Open opens the weights of the checkpoint folder dir.
func Open(dir string) (*Checkpoint, error) {
	return openFile(dir, filepath.Join(dir, "model.safetensors"))
}

func openFile(dir, path string) (*Checkpoint, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if len(raw) < 8 {
		return nil, fmt.Errorf("checkpoint: %s: truncated header", path)
	}
	n := binary.LittleEndian.Uint64(raw)
	if n > uint64(len(raw)-8) {
		return nil, fmt.Errorf("checkpoint: %s: header length %d runs past the end", path, n)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &hdr); err != nil {
		return nil, fmt.Errorf("checkpoint: %s: header: %w", path, err)
	}
	body := raw[8+n:]
	c := &Checkpoint{dir: dir, tensors: map[string]tensorRef{}}
	for name, v := range hdr {
		if name == "__metadata__" {
			continue
		}
		var t struct {
			Dtype   string   `json:"dtype"`
			Shape   []int    `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(v, &t); err != nil {
			return nil, fmt.Errorf("checkpoint: %s: tensor %q: %w", path, name, err)
		}
		if t.Offsets[0] < 0 || t.Offsets[1] < t.Offsets[0] || t.Offsets[1] > int64(len(body)) {
			return nil, fmt.Errorf("checkpoint: %s: tensor %q: offsets %v outside the data (%d bytes)", path, name, t.Offsets, len(body))
		}
		c.tensors[name] = tensorRef{file: path, dtype: t.Dtype, shape: t.Shape, data: body[t.Offsets[0]:t.Offsets[1]]}
	}
	return c, nil
}

// Names lists the tensor names, sorted.
func (c *Checkpoint) Names() []string {
	out := make([]string, 0, len(c.tensors))
	for n := range c.tensors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Has reports whether a tensor is present.
func (c *Checkpoint) Has(name string) bool { _, ok := c.tensors[name]; return ok }

// Shape returns a tensor's shape, or nil if it is absent.
func (c *Checkpoint) Shape(name string) []int { return c.tensors[name].shape }

// Float32 returns the tensor name as float32 values, checking that its
// shape equals shape (when shape is given). The error names the file, the
// tensor and what was expected.
func (c *Checkpoint) Float32(name string, shape ...int) ([]float32, error) {
	t, ok := c.tensors[name]
	if !ok {
		return nil, fmt.Errorf("checkpoint %s: missing tensor %q", c.dir, name)
	}
	if len(shape) > 0 && !sameShape(t.shape, shape) {
		return nil, fmt.Errorf("checkpoint %s: tensor %q has shape %v, expected %v", t.file, name, t.shape, shape)
	}
	if t.dtype != "F32" {
		return nil, fmt.Errorf("checkpoint %s: tensor %q has dtype %s (supported: F32)", t.file, name, t.dtype)
	}
	n := 1
	for _, d := range t.shape {
		n *= d
	}
	if len(t.data) != 4*n {
		return nil, fmt.Errorf("checkpoint %s: tensor %q: %d bytes for shape %v", t.file, name, len(t.data), t.shape)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.data[4*i:]))
	}
	return out, nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Close releases the checkpoint's files.
func (c *Checkpoint) Close() error { return nil }

// Int64 returns an I64 tensor's values (used for golden token ids).
func (c *Checkpoint) Int64(name string) ([]int64, []int, error) {
	t, ok := c.tensors[name]
	if !ok {
		return nil, nil, fmt.Errorf("checkpoint %s: missing tensor %q", c.dir, name)
	}
	if t.dtype != "I64" || len(t.data)%8 != 0 {
		return nil, nil, fmt.Errorf("checkpoint %s: tensor %q has dtype %s, expected I64", t.file, name, t.dtype)
	}
	out := make([]int64, len(t.data)/8)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(t.data[8*i:]))
	}
	return out, t.shape, nil
}

// Uint8 returns a U8 tensor's bytes (used for golden images).
func (c *Checkpoint) Uint8(name string) ([]byte, []int, error) {
	t, ok := c.tensors[name]
	if !ok {
		return nil, nil, fmt.Errorf("checkpoint %s: missing tensor %q", c.dir, name)
	}
	if t.dtype != "U8" {
		return nil, nil, fmt.Errorf("checkpoint %s: tensor %q has dtype %s, expected U8", t.file, name, t.dtype)
	}
	return t.data, t.shape, nil
}

// OpenFile opens a single safetensors file (e.g. golden.safetensors).
func OpenFile(path string) (*Checkpoint, error) {
	return openFile(filepath.Dir(path), path)
}
