package tokenizer

import (
	"path/filepath"
	"testing"
)

func TestTokenizeJSON(t *testing.T) {
	blip := mustLoad(t, filepath.Join(e2eDir, "blip-caption"))
	gpt2 := mustLoad(t, filepath.Join(goldenDir, "gpt2"))
	tests := []struct {
		tk         Tokenizer
		text       string
		addSpecial bool
		want       string
	}{
		{blip, "a photograph of", true, `{"ids":[2,28,183,105,3],"tokens":["[CLS]","a","photograph","of","[SEP]"]}`},
		{blip, "a photograph of", false, `{"ids":[28,183,105],"tokens":["a","photograph","of"]}`},
		{blip, "", false, `{"ids":[],"tokens":[]}`},
		{gpt2, "Hello world<|endoftext|>", true, `{"ids":[15496,995,50256],"tokens":["Hello","Ġworld","<|endoftext|>"]}`},
	}
	for _, tc := range tests {
		b, err := TokenizeJSON(tc.tk, tc.text, tc.addSpecial)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("TokenizeJSON(%q, %v) = %s, want %s", tc.text, tc.addSpecial, b, tc.want)
		}
	}
	if _, err := TokenizeJSON(nil, "x", true); err == nil {
		t.Error("TokenizeJSON(nil) succeeded")
	}
}
