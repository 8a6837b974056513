package generate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
)

// fakeStepper scores a row by looking its whole sequence up in a table of
// next-token probabilities (logits = log p); unlisted sequences get a
// uniform distribution. It records every call so tests can check the
// protocol (prompt once, then one token per row; Reorder semantics).
type fakeStepper struct {
	vocab int
	table map[string][]float64
	rows  [][]int
	steps int
	// cancelAt cancels ctx when the step count reaches it (if > 0).
	cancelAt int
	cancel   context.CancelFunc
}

func newFake(vocab int, table map[string][]float64) *fakeStepper {
	return &fakeStepper{vocab: vocab, table: table, rows: [][]int{nil}}
}

func (f *fakeStepper) Step(ctx context.Context, tokens [][]int) ([][]float32, error) {
	if len(tokens) != len(f.rows) {
		return nil, fmt.Errorf("fake: %d token rows for %d rows", len(tokens), len(f.rows))
	}
	if f.steps > 0 {
		for r, t := range tokens {
			if len(t) != 1 {
				return nil, fmt.Errorf("fake: step %d row %d got %d tokens, want 1", f.steps, r, len(t))
			}
		}
	}
	f.steps++
	if f.cancelAt > 0 && f.steps == f.cancelAt {
		f.cancel()
	}
	out := make([][]float32, len(f.rows))
	for r := range f.rows {
		f.rows[r] = append(f.rows[r], tokens[r]...)
		p, ok := f.table[fmt.Sprint(f.rows[r])]
		row := make([]float32, f.vocab)
		for v := range row {
			if ok {
				row[v] = float32(math.Log(p[v]))
			} else {
				row[v] = float32(math.Log(1 / float64(f.vocab)))
			}
		}
		out[r] = row
	}
	return out, nil
}

func (f *fakeStepper) Reorder(idx []int) {
	rows := make([][]int, len(idx))
	for i, j := range idx {
		rows[i] = append([]int(nil), f.rows[j]...)
	}
	f.rows = rows
}

// lp is the float32 log-probability as the fake produces it.
func lp(p float64) float32 { return float32(math.Log(p)) }

func TestGreedy(t *testing.T) {
	const eos = 3
	table := map[string][]float64{
		"[9]":     {0.1, 0.2, 0.6, 0.1},
		"[9 2]":   {0.1, 0.2, 0.2, 0.5},
		"[9 2 3]": {0.7, 0.1, 0.1, 0.1},
		"[9 2 1]": {0.25, 0.25, 0.25, 0.25},
	}
	tests := []struct {
		name       string
		cfg        Config
		wantTokens []int
		wantLP     []float32
		wantFinish Finish
	}{
		{"stops at eos", Config{MaxNewTokens: 5, EOS: []int{eos}}, []int{2, 3}, []float32{lp(0.6), lp(0.5)}, FinishEOS},
		{"length limit", Config{MaxNewTokens: 1, EOS: []int{eos}}, []int{2}, []float32{lp(0.6)}, FinishLength},
		{"no eos configured", Config{MaxNewTokens: 3}, []int{2, 3, 0}, []float32{lp(0.6), lp(0.5), lp(0.7)}, FinishLength},
		// min_new_tokens=2: eos gets −inf at steps 1 and 2, so at step 2 the next best (ids 1
		// and 2 tie at 0.2: the first wins) is taken and log-probs are
		// renormalised without eos.
		{"min new tokens", Config{MaxNewTokens: 3, MinNewTokens: 2, EOS: []int{eos}}, []int{2, 1, 0}, []float32{lp(0.6 / 0.9), lp(0.2 / 0.5), lp(0.25)}, FinishLength},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(4, table)
			var streamed []int
			res, err := Greedy(context.Background(), f, []int{9}, tc.cfg, func(id int, _ float32) error {
				streamed = append(streamed, id)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(res.Tokens) != fmt.Sprint(tc.wantTokens) || fmt.Sprint(streamed) != fmt.Sprint(tc.wantTokens) {
				t.Fatalf("tokens %v (streamed %v), want %v", res.Tokens, streamed, tc.wantTokens)
			}
			if res.Finish != tc.wantFinish {
				t.Errorf("finish %q, want %q", res.Finish, tc.wantFinish)
			}
			var sum float64
			for i, w := range tc.wantLP {
				if math.Abs(float64(res.Logprobs[i]-w)) > 1e-5 {
					t.Errorf("logprob[%d] = %v, want %v", i, res.Logprobs[i], w)
				}
				sum += float64(res.Logprobs[i])
			}
			if math.Abs(res.Score-sum) > 1e-9 {
				t.Errorf("score %v, want sum of logprobs %v", res.Score, sum)
			}
		})
	}
}

func TestGreedyStops(t *testing.T) {
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f := newFake(4, nil)
		f.cancelAt, f.cancel = 2, cancel
		res, err := Greedy(ctx, f, []int{9}, Config{MaxNewTokens: 10}, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if res.Finish != FinishCancelled || len(res.Tokens) != 2 {
			t.Fatalf("finish %q after %d tokens, want cancelled after 2", res.Finish, len(res.Tokens))
		}
	})
	t.Run("callback error", func(t *testing.T) {
		boom := errors.New("client gone")
		res, err := Greedy(context.Background(), newFake(4, nil), []int{9}, Config{MaxNewTokens: 10}, func(int, float32) error { return boom })
		if !errors.Is(err, boom) || len(res.Tokens) != 1 {
			t.Fatalf("err %v after %d tokens, want the callback's error after 1", err, len(res.Tokens))
		}
	})
	for _, tc := range []struct {
		name   string
		prompt []int
		cfg    Config
	}{
		{"empty prompt", nil, Config{MaxNewTokens: 1}},
		{"zero max", []int{1}, Config{}},
		{"negative min", []int{1}, Config{MaxNewTokens: 1, MinNewTokens: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Greedy(context.Background(), newFake(4, nil), tc.prompt, tc.cfg, nil); err == nil {
				t.Fatal("invalid input accepted")
			}
		})
	}
}

func TestBeam(t *testing.T) {
	const (
		a, b, e = 0, 1, 2
	)
	// Hand-worked search (num_beams 2, vocabulary {a, b, eos}):
	// step 1 from the prompt: a .5, b .3, eos .2 (eos ranks 3rd ≥ 2: dropped);
	// step 2: after a: eos .8 → hypothesis [a eos] = (ln .5+ln .8)/2;
	//         beams [b a] (ln .3+ln .9) and [a a] (ln .5+ln .1);
	// step 3: after [b a]: eos .6 → hypothesis [b a eos] = sum/3.
	tableA := map[string][]float64{
		"[7]":     {0.5, 0.3, 0.2},
		"[7 0]":   {0.1, 0.1, 0.8},
		"[7 1]":   {0.9, 0.05, 0.05},
		"[7 1 0]": {0.2, 0.2, 0.6},
		"[7 0 0]": {0.3, 0.3, 0.4},
	}
	// Same but after a: a .6, b .3, eos .1, so no hypothesis finishes by
	// step 2 and the running beams win at the length limit.
	tableC := map[string][]float64{
		"[7]":   {0.5, 0.3, 0.2},
		"[7 0]": {0.6, 0.3, 0.1},
		"[7 1]": {0.9, 0.05, 0.05},
	}
	// Two eos ids (2, 3): K = 3·num_beams. Step 1: a .4, eos2 .3, eos3 .2,
	// b .1: eos3 ranks 2 ≥ num_beams and must be ignored; with
	// early_stopping=True accepting it would end the search at once.
	tableD := map[string][]float64{"[7]": {0.4, 0.1, 0.3, 0.2}}
	sum := func(ps ...float64) float64 {
		var s float32
		for _, p := range ps {
			s += lp(p)
		}
		return float64(s)
	}
	tests := []struct {
		name       string
		vocab      int
		table      map[string][]float64
		cfg        Config
		wantTokens []int
		wantScore  float64
		wantFinish Finish
	}{
		{"eos hypothesis wins, done by heuristic", 3, tableA, Config{MaxNewTokens: 5, NumBeams: 2, LengthPenalty: 1, EOS: []int{e}},
			[]int{a, e}, sum(0.5, 0.8) / 2, FinishEOS},
		{"length penalty 2 prefers longer", 3, tableA, Config{MaxNewTokens: 3, NumBeams: 2, LengthPenalty: 2, EOS: []int{e}},
			[]int{b, a, e}, sum(0.3, 0.9, 0.6) / 9, FinishEOS},
		{"running beams finalised at max length", 3, tableC, Config{MaxNewTokens: 2, NumBeams: 2, LengthPenalty: 1, EOS: []int{e}},
			[]int{a, a}, sum(0.5, 0.6) / 2, FinishLength},
		{"min new tokens suppresses eos", 3, tableA, Config{MaxNewTokens: 3, MinNewTokens: 2, NumBeams: 2, LengthPenalty: 1, EOS: []int{e}},
			[]int{b, a, e}, (sum(0.3, 0.9) + float64(lp(0.6))) / 3, FinishEOS},
		{"eos ranked below num_beams ignored", 4, tableD, Config{MaxNewTokens: 1, NumBeams: 2, LengthPenalty: 1, EarlyStopping: EarlyStopTrue, EOS: []int{2, 3}},
			[]int{a}, sum(0.4), FinishLength},
		{"one beam equals greedy", 3, tableC, Config{MaxNewTokens: 2, NumBeams: 1, LengthPenalty: 1, EOS: []int{e}},
			[]int{a, a}, sum(0.5, 0.6) / 2, FinishLength},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(tc.vocab, tc.table)
			res, err := Beam(context.Background(), f, []int{7}, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(res.Tokens) != fmt.Sprint(tc.wantTokens) || res.Finish != tc.wantFinish {
				t.Fatalf("got %v (%s), want %v (%s)", res.Tokens, res.Finish, tc.wantTokens, tc.wantFinish)
			}
			if math.Abs(res.Score-tc.wantScore) > 1e-5 {
				t.Errorf("score %v, want %v", res.Score, tc.wantScore)
			}
		})
	}
}

func TestBeamCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFake(3, nil)
	f.cancelAt, f.cancel = 2, cancel
	res, err := Beam(ctx, f, []int{7}, Config{MaxNewTokens: 10, NumBeams: 2, LengthPenalty: 1})
	if !errors.Is(err, context.Canceled) || res.Finish != FinishCancelled {
		t.Fatalf("err %v finish %q, want cancelled", err, res.Finish)
	}
}
