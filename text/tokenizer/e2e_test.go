package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

type e2eCase struct {
	ID          string  `json:"id"`
	Task        string  `json:"task"`
	Prompt      *string `json:"prompt"`
	Question    *string `json:"question"`
	Texts       []string
	PromptIDs   []int   `json:"prompt_ids"`
	QuestionIDs []int   `json:"question_ids"`
	TextIDs     [][]int `json:"text_ids"`
	Expected    struct {
		Text    *string `json:"text"`
		FullIDs []int   `json:"full_ids"`
	} `json:"expected"`
}

// TestE2ECheckpoints checks the tokenizer files of the small e2e checkpoints against
// the ids HF's processors produced (prompt_ids, question_ids, text_ids) and the texts
// HF decoded from the generated ids.
func TestE2ECheckpoints(t *testing.T) {
	tests := []struct {
		dir     string
		class   string
		special SpecialTokens
	}{
		{"blip-caption", "BertTokenizer", SpecialTokens{BOS: 366, EOS: -1, PAD: 0, UNK: 1, CLS: 2, SEP: 3, MASK: 4}},
		{"blip-vqa", "BertTokenizer", SpecialTokens{BOS: 366, EOS: -1, PAD: 0, UNK: 1, CLS: 2, SEP: 3, MASK: 4}},
		{"blip-itm", "BertTokenizer", SpecialTokens{BOS: 366, EOS: -1, PAD: 0, UNK: 1, CLS: 2, SEP: 3, MASK: 4}},
		{"vit-gpt2", "GPT2Tokenizer", SpecialTokens{BOS: 456, EOS: 456, PAD: -1, UNK: 456, CLS: -1, SEP: -1, MASK: -1}},
		{"clip", "CLIPTokenizer", SpecialTokens{BOS: 762, EOS: 763, PAD: 763, UNK: 763, CLS: -1, SEP: -1, MASK: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			dir := filepath.Join(e2eDir, tc.dir)
			tk := mustLoad(t, dir)
			if c := tk.(Info).Class(); c != tc.class {
				t.Errorf("class %q, want %q", c, tc.class)
			}
			sp := tk.Special()
			sp.Names = nil
			if !reflect.DeepEqual(sp, tc.special) {
				t.Errorf("Special() = %+v, want %+v", sp, tc.special)
			}
			b, err := os.ReadFile(filepath.Join(dir, "cases.json"))
			if err != nil {
				t.Fatal(err)
			}
			var cases []e2eCase
			if err := json.Unmarshal(b, &cases); err != nil {
				t.Fatal(err)
			}
			checked := 0
			for _, c := range cases {
				if c.Prompt != nil && c.PromptIDs != nil {
					checked++
					if got := tk.Encode(*c.Prompt, true); !equalInts(got, c.PromptIDs) {
						t.Errorf("%s: Encode(prompt %q) = %v, want %v", c.ID, *c.Prompt, got, c.PromptIDs)
					}
				}
				if c.Question != nil && c.QuestionIDs != nil {
					checked++
					if got := tk.Encode(*c.Question, true); !equalInts(got, c.QuestionIDs) {
						t.Errorf("%s: Encode(question %q) = %v, want %v", c.ID, *c.Question, got, c.QuestionIDs)
					}
				}
				for i, want := range c.TextIDs {
					checked++
					if got := tk.Encode(c.Texts[i], true); !equalInts(got, want) {
						t.Errorf("%s: Encode(text %q) = %v, want %v", c.ID, c.Texts[i], got, want)
					}
				}
				if c.Expected.Text != nil && c.Expected.FullIDs != nil {
					checked++
					if got := tk.Decode(c.Expected.FullIDs, true); got != *c.Expected.Text {
						t.Errorf("%s: Decode(%v) = %q, want %q", c.ID, c.Expected.FullIDs, got, *c.Expected.Text)
					}
					checkStream(t, tk, c.Expected.FullIDs, true)
					checkStream(t, tk, c.Expected.FullIDs, false)
				}
			}
			if checked == 0 {
				t.Fatal("no case carried token ids to check")
			}
		})
	}
}

func TestBLIPAddedTokens(t *testing.T) {
	tk := mustLoad(t, filepath.Join(e2eDir, "blip-caption"))
	if n := tk.VocabSize(); n != 368 {
		t.Errorf("VocabSize = %d, want 368 (366 in vocab.txt + [DEC], [ENC])", n)
	}
	for tok, want := range map[string]int{"[DEC]": 366, "[ENC]": 367, "[SEP]": 3} {
		if id, ok := tk.TokenToID(tok); !ok || id != want {
			t.Errorf("TokenToID(%q) = %d, %v; want %d", tok, id, ok, want)
		}
		if got := tk.Special().Names[tok]; got != want {
			t.Errorf("Special().Names[%q] = %d, want %d", tok, got, want)
		}
	}
	if got := MaxLength(tk); got != 48 {
		t.Errorf("MaxLength = %d, want 48 (model_max_length)", got)
	}
	tests := []struct {
		text string
		ids  []int
	}{
		// Added tokens in the text are kept whole, lower-case copies are not special.
		{"[DEC] a [ENC]", []int{2, 366, 28, 367, 3}},
		{"[dec]", []int{2, 1, 31, 68, 66, 1, 3}},
	}
	for _, tc := range tests {
		if got := tk.Encode(tc.text, true); !equalInts(got, tc.ids) {
			t.Errorf("Encode(%q) = %v, want %v", tc.text, got, tc.ids)
		}
	}
	// [ENC] is an additional special token beyond the vocabulary: when special tokens
	// are kept, HF decodes it as a separate piece, so a following "##" piece is not
	// glued; when they are skipped, "##l" glues to "a".
	ids := []int{366, 28, 367, 75}
	if got, want := tk.Decode(ids, false), "[DEC] a [ENC] ##l"; got != want {
		t.Errorf("Decode(keep) = %q, want %q", got, want)
	}
	if got, want := tk.Decode(ids, true), "al"; got != want {
		t.Errorf("Decode(skip) = %q, want %q", got, want)
	}
}
