// Package checkpoint reads Hugging Face checkpoint folders: safetensors
// files (single or sharded through model.safetensors.index.json) and the
// JSON configuration files beside them.
//
// Files are memory-mapped. Little-endian F32 tensors are returned as
// zero-copy []float32 views of the mapping; F16, BF16 and F64 tensors are
// converted to float32 once, on first use, and the converted slice is
// cached. Every header is validated when the file is opened (header length,
// JSON, dtypes, shapes, offsets inside the data, no overlapping tensors,
// dtype × shape = byte length); errors name the file, the tensor and what
// was expected.
//
// Slices returned by Float32, Int64 and Uint8 point into the mapping and
// become invalid after Close: a model keeps its checkpoint open for its
// lifetime, or copies what it keeps. Treat them as read-only (they are
// shared by every caller; a write does not reach the file).
//
// PyTorch pickles (pytorch_model.bin) are not supported: convert them to
// safetensors first.
package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"unsafe"
)

// Checkpoint is an opened set of weights. Its methods are safe for
// concurrent use.
type Checkpoint struct {
	dir     string
	tensors map[string]*tensor

	mu       sync.Mutex // guards the conversion caches and closed
	closed   bool
	releases []func() error
}

// Open opens the weights of the checkpoint folder dir: model.safetensors
// if present, else the shards listed by model.safetensors.index.json.
func Open(dir string) (*Checkpoint, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("checkpoint: %s is not a directory (use OpenFile for a single .safetensors file)", dir)
	}
	single := filepath.Join(dir, "model.safetensors")
	if ok, err := present(single); err != nil {
		return nil, err
	} else if ok {
		return openFiles(dir, []string{single}, nil)
	}
	index := filepath.Join(dir, "model.safetensors.index.json")
	if ok, err := present(index); err != nil {
		return nil, err
	} else if ok {
		return openIndex(dir, index)
	}
	return nil, missingWeightsError(dir)
}

// present reports whether path exists; a path that exists but cannot be
// used (e.g. a dangling symlink left by an interrupted download) is an
// error naming it.
func present(path string) (bool, error) {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if _, err := os.Stat(path); err != nil {
		return true, fmt.Errorf("checkpoint: %w (a dangling symlink? the download may be incomplete)", err)
	}
	return true, nil
}

// missingWeightsError explains why dir has no usable weights.
func missingWeightsError(dir string) error {
	for _, pat := range []string{"pytorch_model.bin", "pytorch_model.bin.index.json", "*.bin", "*.pt", "*.pth"} {
		if m, _ := filepath.Glob(filepath.Join(dir, pat)); len(m) > 0 {
			return fmt.Errorf("checkpoint: %s holds PyTorch pickle weights (%s), which Glimpse does not load: convert the checkpoint to safetensors "+
				"(in Python: AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True), or download the model's "+
				"model.safetensors from the hub)", dir, filepath.Base(m[0]))
		}
	}
	return fmt.Errorf("checkpoint: %s has neither model.safetensors nor model.safetensors.index.json: not a Hugging Face checkpoint folder, or the weights were not downloaded", dir)
}

// OpenFile opens a single safetensors file (e.g. golden.safetensors).
func OpenFile(path string) (*Checkpoint, error) {
	return openFiles(filepath.Dir(path), []string{path}, nil)
}

// openFiles maps and validates files and merges their tensors; a name in
// two files is an error. If want is not nil, file i must contain
// want[path] (the names the index assigns to it).
func openFiles(dir string, paths []string, want map[string][]string) (*Checkpoint, error) {
	c := &Checkpoint{dir: dir, tensors: map[string]*tensor{}}
	if err := c.addFiles(paths, want); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Checkpoint) addFiles(paths []string, want map[string][]string) error {
	for _, p := range paths {
		ts, err := c.mapOne(p)
		if err != nil {
			return err
		}
		for name, t := range ts {
			if prev, dup := c.tensors[name]; dup {
				return fmt.Errorf("checkpoint: tensor %q is in two shards, %s and %s", name, prev.file, t.file)
			}
			c.tensors[name] = t
		}
		for _, name := range want[p] {
			if _, ok := ts[name]; !ok {
				return fmt.Errorf("checkpoint: %s: tensor %q is listed in model.safetensors.index.json for this shard but is not in it", p, name)
			}
		}
	}
	return nil
}

// mapOne maps one file (falling back to reading it) and parses it.
func (c *Checkpoint) mapOne(path string) (map[string]*tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("checkpoint: %s is not a regular file", path)
	}
	buf, release, err := mapFile(f, st.Size())
	mapped := err == nil && mapsFiles
	if err != nil { // e.g. a file system without mmap: read instead
		if buf, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("checkpoint: %w", err)
		}
		release = func() error { return nil }
	}
	c.releases = append(c.releases, release)
	ts, err := parseSafetensors(buf, path)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		t.mapped = mapped
	}
	return ts, nil
}

// Evict tells the system that the file pages of the named tensors are not
// needed any more: a model calls it once it has packed or copied a tensor,
// so that the mapping's pages do not stay resident (and counted in the
// process's RSS) beside the model's own copy until Close. It is only a
// hint and never changes a value: a slice obtained earlier stays valid and
// reads the file's bytes again if used (the mapping is private and
// read-only by contract; pages a caller wrote into would lose the writes).
// Converted (F16, BF16, F64) and in-memory tensors have no pages to drop;
// unknown names are ignored.
func (c *Checkpoint) Evict(names ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	for _, n := range names {
		if t, ok := c.tensors[n]; ok && t.mapped {
			dropPages(t.data)
		}
	}
}

// EvictAll is Evict for every tensor: call it when a model has finished
// loading and keeps the checkpoint open only for the few tensors it uses
// in place (their pages come back on first use).
func (c *Checkpoint) EvictAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	for _, t := range c.tensors {
		if t.mapped {
			dropPages(t.data)
		}
	}
}

// Close unmaps the files. Slices obtained from the checkpoint must not be
// used afterwards. Close is idempotent; later lookups return an error.
func (c *Checkpoint) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var errs []error
	for _, r := range c.releases {
		if err := r(); err != nil {
			errs = append(errs, err)
		}
	}
	c.releases = nil
	c.tensors = nil
	return errors.Join(errs...)
}

// Dir returns the folder the checkpoint was opened from.
func (c *Checkpoint) Dir() string { return c.dir }

// lookup returns tensor name or an error naming it (and the closed state).
func (c *Checkpoint) lookup(name string) (*tensor, error) {
	c.mu.Lock()
	closed := c.closed
	t, ok := c.tensors[name]
	c.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("checkpoint %s: tensor %q requested after Close", c.dir, name)
	}
	if !ok {
		return nil, fmt.Errorf("checkpoint %s: missing tensor %q", c.dir, name)
	}
	return t, nil
}

// Names lists the tensor names, sorted.
func (c *Checkpoint) Names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.tensors))
	for n := range c.tensors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Has reports whether a tensor is present.
func (c *Checkpoint) Has(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.tensors[name]
	return ok
}

// Shape returns (a copy of) a tensor's shape, or nil if it is absent.
func (c *Checkpoint) Shape(name string) []int {
	t, err := c.lookup(name)
	if err != nil {
		return nil
	}
	return append([]int{}, t.shape...)
}

// Dtype returns a tensor's safetensors dtype ("F32", "BF16", ...), or ""
// if it is absent.
func (c *Checkpoint) Dtype(name string) string {
	t, err := c.lookup(name)
	if err != nil {
		return ""
	}
	return t.dtype
}

// RequireShape checks that tensor name exists with exactly shape, without
// reading its data. The error names the file, the tensor and both shapes.
func (c *Checkpoint) RequireShape(name string, shape ...int) error {
	t, err := c.lookup(name)
	if err != nil {
		return err
	}
	if !sameShape(t.shape, shape) {
		return fmt.Errorf("checkpoint %s: tensor %q has shape %v, expected %v", t.file, name, t.shape, shape)
	}
	return nil
}

// Float32 returns the tensor name as float32 values, checking that its
// shape equals shape (when shape is given). F32 data is returned in place
// (zero-copy); F16, BF16 and F64 are converted once and cached. The error
// names the file, the tensor and what was expected.
func (c *Checkpoint) Float32(name string, shape ...int) ([]float32, error) {
	t, err := c.lookup(name)
	if err != nil {
		return nil, err
	}
	if len(shape) > 0 && !sameShape(t.shape, shape) {
		return nil, fmt.Errorf("checkpoint %s: tensor %q has shape %v, expected %v", t.file, name, t.shape, shape)
	}
	if t.err != nil {
		return nil, t.err
	}
	if t.gen != nil { // FromFunc: a new slice every call, nothing kept
		n := 1
		for _, d := range t.shape {
			n *= d
		}
		out := make([]float32, n)
		t.gen(out)
		return out, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("checkpoint %s: tensor %q requested after Close", c.dir, name)
	}
	if t.f32 != nil {
		return t.f32, nil
	}
	switch t.dtype {
	case "F32":
		t.f32 = f32View(t.data)
	case "F16":
		t.f32 = convertF16(t.data)
	case "BF16":
		t.f32 = convertBF16(t.data)
	case "F64":
		t.f32 = convertF64(t.data)
	default:
		return nil, fmt.Errorf("checkpoint %s: tensor %q has dtype %s, expected a float tensor (supported: F32, F16, BF16, F64)", t.file, name, t.dtype)
	}
	return t.f32, nil
}

// Int64 returns an I64 (or widened I32) tensor's values and its shape.
func (c *Checkpoint) Int64(name string) ([]int64, []int, error) {
	t, err := c.lookup(name)
	if err != nil {
		return nil, nil, err
	}
	var out []int64
	switch t.dtype {
	case "I64":
		out = make([]int64, len(t.data)/8)
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(t.data[8*i:]))
		}
	case "I32":
		out = make([]int64, len(t.data)/4)
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(t.data[4*i:])))
		}
	default:
		return nil, nil, fmt.Errorf("checkpoint %s: tensor %q has dtype %s, expected an integer tensor (supported: I64, I32)", t.file, name, t.dtype)
	}
	return out, append([]int{}, t.shape...), nil
}

// Uint8 returns a U8 (or BOOL) tensor's bytes in place, and its shape.
func (c *Checkpoint) Uint8(name string) ([]byte, []int, error) {
	t, err := c.lookup(name)
	if err != nil {
		return nil, nil, err
	}
	if t.dtype != "U8" && t.dtype != "BOOL" {
		return nil, nil, fmt.Errorf("checkpoint %s: tensor %q has dtype %s, expected U8 or BOOL", t.file, name, t.dtype)
	}
	return t.data, append([]int{}, t.shape...), nil
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

// littleEndian reports whether the host stores integers little-endian, in
// which case F32 safetensors data can be used in place.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// f32View returns b as float32s: a view when the host is little-endian and
// b is 4-byte aligned, else a decoded copy.
func f32View(b []byte) []float32 {
	n := len(b) / 4
	if n == 0 {
		return []float32{}
	}
	if littleEndian && uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}
