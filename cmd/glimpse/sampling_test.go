package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestDecodingFlags runs caption in process with the decoding controls:
// a seeded sample is reproducible and differs between seeds, --stop cuts
// the text with finish reason "stop", --logprobs reports one value per
// token, and bad combinations are refused.
func TestDecodingFlags(t *testing.T) {
	model := filepath.Join("..", "..", "testdata", "golden", "e2e", "blip-caption")
	img := filepath.Join("..", "..", "testdata", "images", "cat_chelsea.jpg")
	caption := func(extra ...string) (genOutput, string, int) {
		args := append([]string{"caption", img, "--model", model, "--json", "--max-new-tokens", "12", "--min-new-tokens", "12"}, extra...)
		out, errOut, code := runArgs(t, nil, args...)
		var g genOutput
		if code == 0 {
			if err := json.Unmarshal([]byte(out), &g); err != nil {
				t.Fatalf("%v: %v\n%s", args, err, out)
			}
		}
		return g, errOut, code
	}
	a, e, code := caption("--sample", "--seed", "5", "--top-k", "30", "--temperature", "1.5", "--logprobs")
	if code != 0 {
		t.Fatalf("sampled caption failed: %s", e)
	}
	b, _, _ := caption("--do-sample", "--seed", "5", "--top-k", "30", "--temperature", "1.5", "--logprobs")
	if a.Text != b.Text || len(a.Logprobs) != len(a.TokenIDs) || len(a.TokenIDs) != 12 {
		t.Fatalf("seed 5 twice: %+v vs %+v", a, b)
	}
	differs := false
	for _, seed := range []string{"6", "7", "8"} {
		c, _, _ := caption("--sample", "--seed", seed, "--top-k", "30", "--temperature", "1.5")
		differs = differs || c.Text != a.Text
	}
	if !differs {
		t.Fatalf("seeds 5–8 all gave %q", a.Text)
	}
	greedy, _, _ := caption()
	words := strings.Fields(greedy.Text)
	if len(words) < 3 {
		t.Fatalf("greedy caption %q too short", greedy.Text)
	}
	stopped, _, code := caption("--stop", words[2])
	if code != 0 || stopped.FinishReason != "stop" || stopped.Text != greedy.Text[:strings.Index(greedy.Text, words[2])] {
		t.Fatalf("--stop %q: %+v (greedy %q)", words[2], stopped, greedy.Text)
	}
	pen, _, code := caption("--repetition-penalty", "1.5", "--no-repeat-ngram-size", "1")
	if code != 0 {
		t.Fatal("penalties refused")
	}
	seen := map[int32]bool{}
	for _, id := range pen.TokenIDs {
		if seen[id] {
			t.Fatalf("--no-repeat-ngram-size 1 repeated token %d: %v", id, pen.TokenIDs)
		}
		seen[id] = true
	}
	if _, e, code := caption("--temperature", "0.5"); code == 0 || !strings.Contains(e, "sampling") {
		t.Fatalf("--temperature without --sample: exit %d, %q", code, e)
	}
}
