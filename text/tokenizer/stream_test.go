package tokenizer

import (
	"math/rand"
	"path/filepath"
	"testing"
)

// TestStreamRandomIDs streams random id sequences (ordinary, special, added and
// out-of-range ids, byte tokens that split UTF-8 characters, "##" pieces, punctuation
// that the clean-up rewrites) for every tokenizer kind and checks the pieces against
// Decode.
func TestStreamRandomIDs(t *testing.T) {
	testStreamRandomIDs(t, 24)
}

// TestStreamRandomIDsSmallWindow repeats it with anchors moved every few ids, so that
// windowed decoding is exercised on long sequences.
func TestStreamRandomIDsSmallWindow(t *testing.T) {
	old := streamWindow
	streamWindow = 2
	defer func() { streamWindow = old }()
	testStreamRandomIDs(t, 80)
	for _, name := range []string{"bert-base-uncased", "gpt2"} {
		tk := mustLoad(t, filepath.Join(goldenDir, name))
		for _, c := range readGolden(t, name).Cases {
			for _, skip := range []bool{true, false} {
				checkStream(t, tk, c.IDsWithSpecial, skip)
			}
		}
	}
}

func testStreamRandomIDs(t *testing.T, maxLen int) {
	dirs := []string{
		filepath.Join(goldenDir, "bert-base-uncased"),
		filepath.Join(goldenDir, "gpt2"),
		filepath.Join(e2eDir, "blip-caption"),
		filepath.Join(e2eDir, "vit-gpt2"),
		filepath.Join(e2eDir, "clip"),
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			tk := mustLoad(t, dir)
			rng := rand.New(rand.NewSource(1))
			n := tk.VocabSize()
			// Ids of tokens that exercise the clean-up and continuation rules.
			var tricky []int
			for _, s := range []string{".", ",", "?", "!", "'", "n", "t", "s", "m", "re", "ve", "##s", "##t", "Ġ.", "Ġ'", "Ġn", "Ġ", "'t", "'s", ".</w>", "'", "t</w>", "<", "</", "w", ">", "Ċ", "Ã", "Ģ", "ł"} {
				if id, ok := tk.TokenToID(s); ok {
					tricky = append(tricky, id)
				}
			}
			for name, id := range tk.Special().Names {
				_ = name
				tricky = append(tricky, id)
			}
			for iter := 0; iter < 300; iter++ {
				ids := make([]int, rng.Intn(maxLen))
				for i := range ids {
					switch r := rng.Intn(10); {
					case r < 5 && len(tricky) > 0:
						ids[i] = tricky[rng.Intn(len(tricky))]
					case r == 5:
						ids[i] = n + rng.Intn(3) // out of range
					default:
						ids[i] = rng.Intn(n)
					}
				}
				checkStream(t, tk, ids, iter%2 == 0)
			}
		})
	}
}

// TestStreamUTF8Split checks that a character whose bytes come in several tokens is
// emitted whole, and only once complete.
func TestStreamUTF8Split(t *testing.T) {
	tk := mustLoad(t, filepath.Join(goldenDir, "gpt2"))
	ids := tk.Encode("猫 cat", false) // 猫 is three byte tokens
	s := tk.NewStream(true)
	var pieces []string
	for _, id := range ids {
		pieces = append(pieces, s.Add(id))
	}
	pieces = append(pieces, s.Flush())
	if pieces[0] != "" || pieces[1] != "" || pieces[2] != "猫" {
		t.Errorf("pieces %q: want \"\", \"\", \"猫\" for the three byte tokens of 猫", pieces)
	}
	if s.Text() != "猫 cat" {
		t.Errorf("Text() = %q", s.Text())
	}
}

// TestStreamHoldsBackCleanup checks that text a later token can still rewrite is not
// emitted early: BERT "don ' t" decodes to "don't", so the space before "'" is held
// until the "t" shows the clean-up applies.
func TestStreamHoldsBackCleanup(t *testing.T) {
	tk := mustLoad(t, filepath.Join(goldenDir, "bert-base-uncased"))
	ids := tk.Encode("don't stop", false)
	s := tk.NewStream(true)
	var got []string
	for _, id := range ids {
		got = append(got, s.Add(id))
	}
	got = append(got, s.Flush())
	want := []string{"don", "", "'t", " stop", ""}
	if !equalStrings(got, want) {
		t.Errorf("pieces %q, want %q (ids %v)", got, want, ids)
	}
}

// TestStreamLong streams the ids of a 4 KB prompt (well past several anchor moves) for
// every kind and checks the pieces against Decode.
func TestStreamLong(t *testing.T) {
	text := prompt10KB()[:4096]
	for _, dir := range []string{filepath.Join(goldenDir, "bert-base-uncased"), filepath.Join(goldenDir, "gpt2"), filepath.Join(e2eDir, "clip"), filepath.Join(e2eDir, "blip-caption")} {
		tk := mustLoad(t, dir)
		ids := tk.Encode(text, true)
		if len(ids) < 400 {
			t.Fatalf("%s: only %d ids", dir, len(ids))
		}
		for _, skip := range []bool{true, false} {
			checkStream(t, tk, ids, skip)
		}
		s := tk.NewStream(true)
		for _, id := range ids {
			s.Add(id)
		}
		if s.base == 0 {
			t.Errorf("%s: the stream never moved its anchor over %d ids", dir, len(ids))
		}
	}
}
