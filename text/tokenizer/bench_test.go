package tokenizer

import (
	"path/filepath"
	"strings"
	"testing"
)

// prompt10KB is about 10 KB of mixed prompt text (English, punctuation, accents, CJK,
// emoji, a URL, numbers).
func prompt10KB() string {
	unit := "A woman in an orange flight suit smiles at the camera; the café's menu says “crème brûlée” for $3.50! 一只猫坐在桌子上 🍕 https://example.com/a?b=1 don't stop. "
	var b strings.Builder
	for b.Len() < 10*1024 {
		b.WriteString(unit)
	}
	return b.String()
}

func benchEncode(b *testing.B, dir string) {
	tk := mustLoad(b, dir)
	text := prompt10KB()
	tk.Encode(text, true) // warm the BPE cache as a server would be
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tk.Encode(text, true)
	}
}

func BenchmarkEncode10KBBert(b *testing.B) {
	benchEncode(b, filepath.Join(goldenDir, "bert-base-uncased"))
}
func BenchmarkEncode10KBGPT2(b *testing.B) { benchEncode(b, filepath.Join(goldenDir, "gpt2")) }
func BenchmarkEncode10KBCLIP(b *testing.B) { benchEncode(b, filepath.Join(e2eDir, "clip")) }

// BenchmarkEncode10KBGPT2Cold measures GPT-2 with an empty BPE cache each time.
func BenchmarkEncode10KBGPT2Cold(b *testing.B) {
	tk := mustLoad(b, filepath.Join(goldenDir, "gpt2")).(*tok)
	text := prompt10KB()
	bp := tk.m.(*gpt2Model).b
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bp.mu.Lock()
		bp.cache = map[string][]string{}
		bp.mu.Unlock()
		tk.Encode(text, true)
	}
}

func BenchmarkDecodeStream(b *testing.B) {
	tk := mustLoad(b, filepath.Join(goldenDir, "gpt2"))
	ids := tk.Encode(prompt10KB()[:2000], false)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := tk.NewStream(true)
		for _, id := range ids {
			s.Add(id)
		}
		s.Flush()
	}
	b.ReportMetric(float64(len(ids)), "ids")
}
