package tokenizer

import (
	"encoding/json"
	"os"
	"testing"
)

// TestPretokenizeMatchesPythonRegex checks the hand-written GPT-2 and CLIP pattern
// scanners against regex.findall results recorded from Python's `regex` module on
// 3000 random strings mixing contractions, every kind of white space, letters,
// numbers, symbols and the special-token literals (testdata/pretokenize_regex.json).
func TestPretokenizeMatchesPythonRegex(t *testing.T) {
	b, err := os.ReadFile("testdata/pretokenize_regex.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []struct {
			Text string   `json:"text"`
			GPT2 []string `json:"gpt2"`
			CLIP []string `json:"clip"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) < 1000 {
		t.Fatalf("only %d cases", len(f.Cases))
	}
	for _, c := range f.Cases {
		if got := gpt2Split(c.Text); !equalStrings(got, c.GPT2) {
			t.Errorf("gpt2Split(%q) = %q, want %q", c.Text, got, c.GPT2)
		}
		if got := clipSplit(c.Text, true); !equalStrings(got, c.CLIP) {
			t.Errorf("clipSplit(%q) = %q, want %q", c.Text, got, c.CLIP)
		}
	}
}
