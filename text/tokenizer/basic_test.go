package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestBasicTokenizerUnicode14 checks BERT tokenisation and CLIP's text clean-up on
// random strings from many Unicode ranges (controls, format characters, combining
// marks, Greek final sigma, CJK and compatibility ideographs, Unicode 15 additions that
// CPython 3.11 does not know, emoji, math letters) against results computed with
// CPython 3.11's unicodedata (testdata/basic_unicode14.json).
func TestBasicTokenizerUnicode14(t *testing.T) {
	b, err := os.ReadFile("testdata/basic_unicode14.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []struct {
			Text      string   `json:"text"`
			Tokens    []string `json:"tokens"`
			ClipBasic []string `json:"clipbasic"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) < 1000 {
		t.Fatalf("only %d cases", len(f.Cases))
	}
	bert := mustLoad(t, filepath.Join(goldenDir, "bert-base-uncased"))
	clip := mustLoad(t, filepath.Join(e2eDir, "clip")).(*tok).m.(*clipModel)
	for _, c := range f.Cases {
		if got := bert.Tokens(c.Text); !equalStrings(got, c.Tokens) {
			t.Errorf("BERT Tokens(%+q) = %q, want %q", c.Text, got, c.Tokens)
		}
		if got := clip.basic.basic(c.Text, nil); !equalStrings(got, c.ClipBasic) {
			t.Errorf("CLIP clean-up(%+q) = %q, want %q", c.Text, got, c.ClipBasic)
		}
	}
}
