package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

const (
	goldenDir = "../../testdata/golden/tokenizers"
	e2eDir    = "../../testdata/golden/e2e"
)

type goldenCase struct {
	Name               string   `json:"name"`
	Category           string   `json:"category"`
	Text               string   `json:"text"`
	Tokens             []string `json:"tokens"`
	IDs                []int    `json:"ids"`
	IDsWithSpecial     []int    `json:"ids_with_special"`
	TokensWithSpecial  []string `json:"tokens_with_special"`
	Decoded            string   `json:"decoded"`
	DecodedKeepSpecial string   `json:"decoded_keep_special"`
}

type goldenFile struct {
	Tokenizer       string         `json:"tokenizer"`
	SpecialTokenIDs map[string]int `json:"special_token_ids"`
	Cases           []goldenCase   `json:"cases"`
}

func readGolden(t testing.TB, name string) goldenFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, name+".golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g goldenFile
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) != 62 {
		t.Fatalf("%s: %d cases, want 62", name, len(g.Cases))
	}
	return g
}

func mustLoad(t testing.TB, dir string) Tokenizer {
	t.Helper()
	tk, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// checkGolden compares every field of the golden cases with tk's output.
func checkGolden(t *testing.T, tk Tokenizer, g goldenFile) {
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			if got := tk.Tokens(c.Text); !equalStrings(got, c.Tokens) {
				t.Errorf("Tokens(%q)\n got %q\nwant %q", c.Text, got, c.Tokens)
			}
			if got := tk.Encode(c.Text, false); !equalInts(got, c.IDs) {
				t.Errorf("Encode(%q, false)\n got %v\nwant %v", c.Text, got, c.IDs)
			}
			if got := tk.Encode(c.Text, true); !equalInts(got, c.IDsWithSpecial) {
				t.Errorf("Encode(%q, true)\n got %v\nwant %v", c.Text, got, c.IDsWithSpecial)
			}
			var toks []string
			for _, id := range c.IDsWithSpecial {
				s, ok := tk.IDToToken(id)
				if !ok {
					t.Fatalf("IDToToken(%d) not found", id)
				}
				if back, ok := tk.TokenToID(s); !ok || back != id {
					t.Errorf("TokenToID(%q) = %d, %v; want %d", s, back, ok, id)
				}
				toks = append(toks, s)
			}
			if !equalStrings(toks, c.TokensWithSpecial) {
				t.Errorf("IDToToken\n got %q\nwant %q", toks, c.TokensWithSpecial)
			}
			if got := tk.Decode(c.IDsWithSpecial, true); got != c.Decoded {
				t.Errorf("Decode(skip)\n got %q\nwant %q", got, c.Decoded)
			}
			if got := tk.Decode(c.IDsWithSpecial, false); got != c.DecodedKeepSpecial {
				t.Errorf("Decode(keep)\n got %q\nwant %q", got, c.DecodedKeepSpecial)
			}
			for _, skip := range []bool{true, false} {
				checkStream(t, tk, c.IDsWithSpecial, skip)
			}
		})
	}
}

// checkStream streams ids one at a time and checks the pieces against Decode.
func checkStream(t testing.TB, tk Tokenizer, ids []int, skip bool) {
	t.Helper()
	s := tk.NewStream(skip)
	var b strings.Builder
	for i, id := range ids {
		p := s.Add(id)
		if !utf8.ValidString(p) {
			t.Fatalf("stream piece %q after id %d (#%d) is not valid UTF-8", p, id, i)
		}
		b.WriteString(p)
		// What was emitted must be a prefix of the decode of every longer prefix
		// (checked at every step for short sequences, every 32nd for long ones).
		if len(ids) > 64 && i%32 != 0 {
			continue
		}
		if full := tk.Decode(ids[:i+1], skip); !strings.HasPrefix(full, b.String()) {
			t.Fatalf("after %d ids the stream emitted %q, not a prefix of Decode %q", i+1, b.String(), full)
		}
	}
	p := s.Flush()
	if !utf8.ValidString(p) {
		t.Fatalf("flushed piece %q is not valid UTF-8", p)
	}
	b.WriteString(p)
	if want := tk.Decode(ids, skip); b.String() != want {
		t.Fatalf("stream (skip=%v) of %v = %q, Decode = %q", skip, ids, b.String(), want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

func equalStrings(a, b []string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

func TestGoldenBERT(t *testing.T) {
	g := readGolden(t, "bert-base-uncased")
	tk := mustLoad(t, filepath.Join(goldenDir, "bert-base-uncased"))
	checkSpecialIDs(t, tk, g)
	checkGolden(t, tk, g)
}

func TestGoldenGPT2(t *testing.T) {
	g := readGolden(t, "gpt2")
	tk := mustLoad(t, filepath.Join(goldenDir, "gpt2"))
	checkSpecialIDs(t, tk, g)
	checkGolden(t, tk, g)
}

func checkSpecialIDs(t *testing.T, tk Tokenizer, g goldenFile) {
	sp := tk.Special()
	roles := map[string]int{"bos_token": sp.BOS, "eos_token": sp.EOS, "unk_token": sp.UNK, "sep_token": sp.SEP,
		"pad_token": sp.PAD, "cls_token": sp.CLS, "mask_token": sp.MASK}
	for role, got := range roles {
		want, ok := g.SpecialTokenIDs[role]
		if !ok {
			want = -1
		}
		if got != want {
			t.Errorf("%s: Special() %s = %d, want %d", g.Tokenizer, role, got, want)
		}
	}
}
