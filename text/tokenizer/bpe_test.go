package tokenizer

import (
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// TestGPT2BPERandom checks the heap-based merge loop against the slow tokenizer's
// merge-all-occurrences loop, run in Python on random strings with the real GPT-2
// vocabulary (testdata/gpt2_bpe_random.json: repeated letters, mixed scripts, emoji,
// control characters, contractions).
func TestGPT2BPERandom(t *testing.T) {
	b, err := os.ReadFile("testdata/gpt2_bpe_random.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []struct {
			Text string `json:"text"`
			IDs  []int  `json:"ids"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) < 1000 {
		t.Fatalf("only %d cases", len(f.Cases))
	}
	tk := mustLoad(t, filepath.Join(goldenDir, "gpt2"))
	for _, c := range f.Cases {
		if got := tk.Encode(c.Text, false); !equalInts(got, c.IDs) {
			t.Errorf("Encode(%+q) = %v, want %v", c.Text, got, c.IDs)
		}
	}
}

// TestBPEMergeOrder compares the heap-based merge with the slow tokenizers' loop on
// fixed cases and on random merge tables, including tables where a merge creates a
// pair of lower rank than the one just applied (the slow loop first merges every
// occurrence of the current pair, then looks for the lowest rank again).
func TestBPEMergeOrder(t *testing.T) {
	tests := []struct {
		merges [][2]string
		word   string
	}{
		{[][2]string{{"a", "a"}}, "aaa"},
		{[][2]string{{"a", "a"}}, "aaaa"},
		{[][2]string{{"aa", "b"}, {"a", "a"}}, "aaab"},
		{[][2]string{{"b", "c"}, {"a", "b"}}, "abc"},
		{[][2]string{{"ab", "ab"}, {"a", "b"}}, "ababab"},
		{[][2]string{{"x", "y"}}, ""},
	}
	rng := rand.New(rand.NewSource(5))
	syms := []string{"a", "b", "c"}
	for i := 0; i < 2000; i++ {
		var merges [][2]string
		pool := append([]string(nil), syms...)
		for k := rng.Intn(8); k > 0; k-- {
			m := [2]string{pool[rng.Intn(len(pool))], pool[rng.Intn(len(pool))]}
			merges = append(merges, m)
			pool = append(pool, m[0]+m[1])
		}
		rng.Shuffle(len(merges), func(i, j int) { merges[i], merges[j] = merges[j], merges[i] })
		var w []byte
		for k := rng.Intn(12); k > 0; k-- {
			w = append(w, "abc"[rng.Intn(3)])
		}
		tests = append(tests, struct {
			merges [][2]string
			word   string
		}{merges, string(w)})
	}
	for _, tc := range tests {
		got := newBPE(tc.merges, "").merge(tc.word)
		want := slowBPE(tc.merges, tc.word)
		if !equalStrings(got, want) {
			t.Errorf("merge(%q) with %v = %q, slow loop gives %q", tc.word, tc.merges, got, want)
		}
	}
}

// slowBPE is the slow tokenizers' loop, written plainly for the test.
func slowBPE(merges [][2]string, word string) []string {
	rank := map[[2]string]int{}
	for i, m := range merges {
		rank[m] = i
	}
	var w []string
	for _, r := range word {
		w = append(w, string(r))
	}
	for len(w) > 1 {
		best, bestRank := -1, 0
		for i := 0; i+1 < len(w); i++ {
			if r, ok := rank[[2]string{w[i], w[i+1]}]; ok && (best < 0 || r < bestRank) {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		a, b := w[best], w[best+1]
		var nw []string
		for i := 0; i < len(w); {
			if i+1 < len(w) && w[i] == a && w[i+1] == b {
				nw = append(nw, a+b)
				i += 2
			} else {
				nw = append(nw, w[i])
				i++
			}
		}
		w = nw
	}
	return w
}

// TestCLIPRandom checks CLIP tokenisation (slow class without ftfy) of random word
// sequences with the e2e CLIP vocabulary against results computed in Python
// (testdata/clip_bpe_random.json: cased and accented words, Greek final sigma, CJK,
// emoji, contractions, special-token literals, zero-width and control characters).
func TestCLIPRandom(t *testing.T) {
	b, err := os.ReadFile("testdata/clip_bpe_random.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []struct {
			Text string `json:"text"`
			IDs  []int  `json:"ids"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) < 1000 {
		t.Fatalf("only %d cases", len(f.Cases))
	}
	tk := mustLoad(t, filepath.Join(e2eDir, "clip"))
	for _, c := range f.Cases {
		if got := tk.Encode(c.Text, true); !equalInts(got, c.IDs) {
			t.Errorf("Encode(%+q) = %v, want %v", c.Text, got, c.IDs)
		}
	}
}
