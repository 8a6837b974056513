package train

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// WriteSafetensors writes params (and their aliases) to path, as F16 if
// half, else F32. Tensors are sorted by name, as safetensors does.
func WriteSafetensors(path string, ps *Params, half bool) error {
	type entry struct {
		name string
		p    *Param
	}
	var es []entry
	for _, p := range ps.List() {
		if p.Transient {
			continue
		}
		es = append(es, entry{p.Name, p})
		for _, a := range p.Alias {
			es = append(es, entry{a, p})
		}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].name < es[j].name })
	dtype, size := "F32", 4
	if half {
		dtype, size = "F16", 2
	}
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	off := 0
	for _, e := range es {
		n := len(e.p.W) * size
		header[e.name] = map[string]any{"dtype": dtype, "shape": e.p.Shape, "data_offsets": []int{off, off + n}}
		off += n
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	buf := make([]byte, 8, 8+len(hb)+off)
	binary.LittleEndian.PutUint64(buf, uint64(len(hb)))
	buf = append(buf, hb...)
	for _, e := range es {
		for _, v := range e.p.W {
			if half {
				buf = binary.LittleEndian.AppendUint16(buf, f32ToF16(v))
			} else {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			}
		}
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// f32ToF16 converts with round-to-nearest-even (overflow to ±Inf,
// subnormals kept).
func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int((b >> 23) & 0xff)
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint(14 - e)
		half := uint32(1) << (shift - 1)
		r := man >> shift
		rem := man & ((1 << shift) - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := man >> 13
	rem := man & 0x1fff
	out := uint32(e)<<10 | r
	if rem > 0x1000 || (rem == 0x1000 && out&1 == 1) {
		out++
	}
	return sign | uint16(out)
}

// roundF16 rounds every value of ps to what F16 storage keeps, so the
// in-memory model is the one that is written.
func roundF16(ps *Params) {
	defer ps.Touch()
	for _, p := range ps.List() {
		for i, v := range p.W {
			p.W[i] = f16ToF32(f32ToF16(v))
		}
	}
}

func f16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0 && man == 0:
		return math.Float32frombits(sign)
	case exp == 0:
		e := uint32(127 - 15 + 1)
		for man&0x400 == 0 {
			man <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (man&0x3ff)<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | man<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

func copyFile(dst, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// ensureDir creates dir.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("train: output folder: %w", err)
	}
	return nil
}

var _ = filepath.Join
