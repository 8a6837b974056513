package generate

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"
)

func TestBannedNgramTokens(t *testing.T) {
	tests := []struct {
		seq  []int
		n    int
		want []int
	}{
		{[]int{1, 2, 3, 1, 2}, 3, []int{3}},
		{[]int{1, 2, 3, 1, 2}, 2, []int{3}},             // prefix (2): followed by 3 once
		{[]int{1, 2, 1, 3, 1}, 2, []int{2, 3}},          // 1 was followed by 2 and 3
		{[]int{1, 2}, 3, nil},                           // too short: cur_len+1 < n
		{[]int{5, 5, 5}, 1, []int{5, 5, 5}},             // unigrams: every seen token
		{[]int{7, 8, 9, 7, 8, 4, 7, 8}, 3, []int{9, 4}}, // two continuations
		{[]int{7, 8, 9, 7, 8, 4, 7, 9}, 3, nil},         // (7, 9) never seen
		{[]int{1, 1, 1, 1}, 4, nil},                     // only (1,1,1,1): its prefix (1,1,1) matches
	}
	// the last case: seq (1,1,1,1) has one 4-gram whose prefix (1,1,1)
	// equals the last three tokens, so 1 is banned.
	tests[len(tests)-1].want = []int{1}
	for _, tc := range tests {
		got := bannedNgramTokens(nil, tc.seq, tc.n)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("banned(%v, %d) = %v, want %v", tc.seq, tc.n, got, tc.want)
		}
	}
}

func TestProcessor(t *testing.T) {
	ninf := float32(math.Inf(-1))
	tests := []struct {
		name string
		cfg  Config
		row  []float32
		seq  []int
		gen  int
		want []float32
	}{
		{"repetition penalty divides positive, multiplies negative, once per id",
			Config{Sampling: Sampling{RepetitionPenalty: 2}}, []float32{4, -1, 3, 1}, []int{0, 1, 1, 0}, 1,
			[]float32{2, -2, 3, 1}},
		{"penalty 1 is off", Config{Sampling: Sampling{RepetitionPenalty: 1}}, []float32{4, -1}, []int{0, 1}, 1, []float32{4, -1}},
		{"no repeat ngram bans the continuation", Config{Sampling: Sampling{NoRepeatNgramSize: 2}},
			[]float32{1, 1, 1, 1}, []int{0, 2, 0}, 1, []float32{1, 1, ninf, 1}},
		{"min new tokens suppresses eos", Config{MinNewTokens: 2, EOS: []int{3}},
			[]float32{1, 1, 1, 1}, []int{0}, 1, []float32{1, 1, 1, ninf}},
		{"min new tokens reached", Config{MinNewTokens: 2, EOS: []int{3}},
			[]float32{1, 1, 1, 1}, []int{0}, 2, []float32{1, 1, 1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &processor{cfg: &tc.cfg}
			p.apply(tc.row, tc.seq, tc.gen)
			if fmt.Sprint(tc.row) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", tc.row, tc.want)
			}
		})
	}
}

func TestWarp(t *testing.T) {
	ninf := float32(math.Inf(-1))
	l := func(ps ...float64) []float32 {
		out := make([]float32, len(ps))
		for i, p := range ps {
			out[i] = float32(math.Log(p))
		}
		return out
	}
	tests := []struct {
		name string
		s    Sampling
		row  []float32
		keep []bool
	}{
		{"top_k 2", Sampling{TopK: 2}, l(0.1, 0.5, 0.3, 0.1), []bool{false, true, true, false}},
		{"top_k keeps ties at the k-th", Sampling{TopK: 2}, l(0.2, 0.4, 0.2, 0.2), []bool{true, true, true, true}},
		{"top_k above vocab", Sampling{TopK: 10}, l(0.2, 0.8), []bool{true, true}},
		{"top_p .75 keeps .5 and .3", Sampling{TopP: 0.75}, l(0.05, 0.5, 0.15, 0.3), []bool{false, true, false, true}},
		{"top_p tiny keeps the best", Sampling{TopP: 0.01}, l(0.2, 0.3, 0.5), []bool{false, false, true}},
		{"temperature then top_k", Sampling{Temperature: 0.5, TopK: 1}, l(0.3, 0.7), []bool{false, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Sampling: tc.s}
			newSampler(&cfg).warp(tc.row)
			for i, k := range tc.keep {
				if (tc.row[i] != ninf) != k {
					t.Fatalf("row %v: token %d kept=%v, want %v", tc.row, i, tc.row[i] != ninf, k)
				}
			}
		})
	}
	// Temperature divides the scores.
	row := []float32{1, -2}
	cfg := Config{Sampling: Sampling{Temperature: 0.5}}
	newSampler(&cfg).warp(row)
	if row[0] != 2 || row[1] != -4 {
		t.Fatalf("temperature 0.5: %v, want [2 -4]", row)
	}
}

// TestSampleDistribution draws the first token many times with different
// seeds and checks the frequencies against the distribution.
func TestSampleDistribution(t *testing.T) {
	probs := []float64{0.1, 0.6, 0.3}
	table := map[string][]float64{"[9]": probs}
	const n = 3000
	counts := make([]int, 3)
	for seed := uint64(1); seed <= n; seed++ {
		cfg := Config{MaxNewTokens: 1, Sampling: Sampling{Sample: true, Seed: seed}}
		res, err := Greedy(context.Background(), newFake(3, table), []int{9}, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		counts[res.Tokens[0]]++
	}
	for i, p := range probs {
		got := float64(counts[i]) / n
		if sd := math.Sqrt(p * (1 - p) / n); math.Abs(got-p) > 5*sd {
			t.Errorf("token %d drawn %.3f of the time, want %.3f", i, got, p)
		}
	}
}

func TestSampleSeeded(t *testing.T) {
	run := func(s Sampling) []int {
		cfg := Config{MaxNewTokens: 12, Sampling: s}
		res, err := Greedy(context.Background(), newFake(50, nil), []int{9}, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Tokens
	}
	a := run(Sampling{Sample: true, Seed: 42})
	b := run(Sampling{Sample: true, Seed: 42})
	c := run(Sampling{Sample: true, Seed: 43})
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("same seed gave %v and %v", a, b)
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatalf("seeds 42 and 43 gave the same 12 tokens out of 50 uniformly: %v", a)
	}
	// top_k 1 is greedy.
	table := map[string][]float64{"[9]": {0.2, 0.5, 0.3}}
	res, err := Greedy(context.Background(), newFake(3, table), []int{9}, Config{MaxNewTokens: 1, Sampling: Sampling{Sample: true, TopK: 1, Seed: 7}}, nil)
	if err != nil || res.Tokens[0] != 1 {
		t.Fatalf("top_k 1 sampled %v (%v), want [1]", res, err)
	}
	// Logprobs are log_softmax of the warped scores: with top_k 1 the
	// chosen token has probability 1.
	if res.Logprobs[0] != 0 {
		t.Fatalf("logprob under top_k 1 = %v, want 0", res.Logprobs[0])
	}
}

func TestGreedyRepetitionControls(t *testing.T) {
	// The fake always prefers token 1 (0.5), then 2 (0.3), then 0.
	uniform := func() map[string][]float64 {
		m := map[string][]float64{}
		seqs := [][]int{{9}, {9, 1}, {9, 1, 1}, {9, 1, 2}, {9, 1, 1, 1}, {9, 1, 2, 1}, {9, 1, 2, 0}}
		for _, s := range seqs {
			m[fmt.Sprint(s)] = []float64{0.2, 0.5, 0.3}
		}
		return m
	}()
	tests := []struct {
		name string
		s    Sampling
		want []int
	}{
		{"plain greedy repeats", Sampling{}, []int{1, 1, 1}},
		// ln .5/10 = -6.9 < ln .3: 2 wins, then both seen: -6.9 vs ln .3·10... 2 is penalised too: ln .2 unpenalised wins.
		{"repetition penalty 10", Sampling{RepetitionPenalty: 10}, []int{1, 2, 0}},
		{"no repeat unigram", Sampling{NoRepeatNgramSize: 1}, []int{1, 2, 0}},
		{"no repeat bigram", Sampling{NoRepeatNgramSize: 2}, []int{1, 1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Greedy(context.Background(), newFake(3, uniform), []int{9}, Config{MaxNewTokens: 3, Sampling: tc.s}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(res.Tokens) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", res.Tokens, tc.want)
			}
		})
	}
	// Everything banned: an error, not a panic.
	_, err := Greedy(context.Background(), newFake(1, nil), []int{0}, Config{MaxNewTokens: 2, Sampling: Sampling{Sample: true, NoRepeatNgramSize: 1}}, nil)
	if err == nil {
		t.Fatal("sampling with every token banned succeeded")
	}
	if _, err := Greedy(context.Background(), newFake(3, nil), []int{0}, Config{MaxNewTokens: 2, Sampling: Sampling{TopP: 2}}, nil); err == nil {
		t.Fatal("top_p 2 accepted")
	}
	if _, err := Beam(context.Background(), newFake(3, nil), []int{0}, Config{MaxNewTokens: 2, NumBeams: 2, Sampling: Sampling{Sample: true}}); err == nil {
		t.Fatal("beam sampling accepted")
	}
}

// seqModel is a toy batched "model": the logits of a sequence depend only
// on its own token history (a hash), like a real decoder with per-sequence
// caches.
type seqModel struct{ vocab int }

type toySeq struct {
	hist *[]int
	toks []int
}

func (m seqModel) run(seqs []toySeq) ([][]float32, error) {
	out := make([][]float32, len(seqs))
	for i, s := range seqs {
		*s.hist = append(*s.hist, s.toks...)
		h := uint64(1469598103934665603)
		for _, t := range *s.hist {
			h = (h ^ uint64(t)) * 1099511628211
		}
		row := make([]float32, m.vocab)
		for v := range row {
			x := (h ^ uint64(v)*0x9e3779b97f4a7c15) * 1099511628211
			row[v] = float32(x%1000) / 100
		}
		out[i] = row
	}
	return out, nil
}

// batchedStepper adapts a Member to Stepper for the toy model.
type batchedStepper struct {
	m     *Member[toySeq]
	hists [][]int
}

func (s *batchedStepper) Step(ctx context.Context, tokens [][]int) ([][]float32, error) {
	seqs := make([]toySeq, len(tokens))
	for r := range tokens {
		seqs[r] = toySeq{hist: &s.hists[r], toks: tokens[r]}
	}
	return s.m.Step(ctx, seqs)
}

func (s *batchedStepper) Reorder(idx []int) {
	next := make([][]int, len(idx))
	for i, j := range idx {
		next[i] = append([]int(nil), s.hists[j]...)
	}
	s.hists = next
}

func TestBatcherIndependence(t *testing.T) {
	model := seqModel{vocab: 40}
	cfgs := []Config{
		{MaxNewTokens: 15},
		{MaxNewTokens: 9, EOS: []int{3}},
		{MaxNewTokens: 12, Sampling: Sampling{Sample: true, Seed: 5, TopK: 10, Temperature: 0.7}},
		{MaxNewTokens: 10, Sampling: Sampling{Sample: true, Seed: 6, TopP: 0.9, RepetitionPenalty: 1.3}},
		{MaxNewTokens: 8, NumBeams: 3, LengthPenalty: 1, EOS: []int{3}},
		{MaxNewTokens: 14, Sampling: Sampling{NoRepeatNgramSize: 2}},
	}
	decode := func(b *Batcher[toySeq], i int) string {
		m := b.Join()
		defer m.Leave()
		s := &batchedStepper{m: m, hists: [][]int{nil}}
		res, err := Decode(context.Background(), s, []int{i + 1, 7}, cfgs[i%len(cfgs)], nil)
		if err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprint(res.Tokens, res.Logprobs, res.Finish)
	}
	const n = 16
	alone := make([]string, n)
	for i := range alone {
		alone[i] = decode(NewBatcher(model.run, 0, 0), i)
	}
	// The batcher is held until every request has submitted its first
	// step, so that step carries all of them whatever the goroutine timing.
	b := NewBatcher(model.run, 50*time.Millisecond, 0)
	release := b.Hold()
	together := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			together[i] = decode(b, i)
		}()
	}
	waitUntil(t, func() bool { return b.Pending() == n })
	if steps, _ := b.Stats(); steps != 0 {
		t.Fatalf("%d steps ran while the batcher was held", steps)
	}
	release()
	release() // idempotent
	wg.Wait()
	for i := range alone {
		if alone[i] != together[i] {
			t.Errorf("request %d: alone %s, batched %s", i, alone[i], together[i])
		}
	}
	if m := b.MaxMembers(); m != n {
		steps, rows := b.Stats()
		t.Errorf("at most %d of %d requests shared a step (%d steps carried %d sequences)", m, n, steps, rows)
	}
}

// waitUntil polls cond (no timing assumption: only a bound on the wait).
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within a minute")
		}
	}
}

func TestBatcherMaxRowsAndErrors(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	run := func(seqs []int) ([][]float32, error) {
		mu.Lock()
		sizes = append(sizes, len(seqs))
		mu.Unlock()
		out := make([][]float32, len(seqs))
		for i, s := range seqs {
			if s < 0 {
				return nil, fmt.Errorf("bad sequence %d", s)
			}
			out[i] = []float32{float32(s)}
		}
		return out, nil
	}
	b := NewBatcher(run, 200*time.Millisecond, 3)
	var wg sync.WaitGroup
	results := make([]string, 6)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := b.Join()
			defer m.Leave()
			v := i
			if i == 4 {
				v = -1
			}
			rows, err := m.Step(context.Background(), []int{v})
			results[i] = fmt.Sprint(rows, err != nil)
		}()
	}
	wg.Wait()
	for i, r := range results {
		want := fmt.Sprint([][]float32{{float32(i)}}, false)
		if i == 4 {
			want = fmt.Sprint([][]float32(nil), true)
		}
		if r != want {
			t.Errorf("request %d got %s, want %s (a bad request must not fail the others)", i, r, want)
		}
	}
	for _, s := range sizes {
		if s > 3 {
			t.Errorf("a step carried %d sequences, max 3", s)
		}
	}
	// After Leave, Step fails; a cancelled context fails before submitting.
	m := b.Join()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Step(ctx, []int{1}); err == nil {
		t.Error("step with a cancelled context succeeded")
	}
	m.Leave()
	m.Leave()
	if _, err := m.Step(context.Background(), []int{1}); err == nil {
		t.Error("step after Leave succeeded")
	}
}

func TestResolveSampling(t *testing.T) {
	hf := HFSamplingDefaults()
	tests := []struct {
		name string
		def  SamplingDefaults
		req  Sampling
		want Sampling
		bad  bool
	}{
		{"greedy defaults: all off", hf, Sampling{}, Sampling{}, false},
		{"penalties apply without sampling", hf, Sampling{RepetitionPenalty: 1.2, NoRepeatNgramSize: 3}, Sampling{RepetitionPenalty: 1.2, NoRepeatNgramSize: 3}, false},
		{"sampling gets HF's top_k 50", hf, Sampling{Sample: true, Seed: 9}, Sampling{Sample: true, TopK: 50, Seed: 9}, false},
		{"request overrides", hf, Sampling{Sample: true, Temperature: 0.7, TopK: 5, TopP: 0.9, Seed: 3}, Sampling{Sample: true, Temperature: 0.7, TopK: 5, TopP: 0.9, Seed: 3}, false},
		{"checkpoint do_sample", SamplingDefaults{DoSample: true, Temperature: 0.5, TopK: 0, TopP: 0.8, RepetitionPenalty: 1.5}, Sampling{Seed: 1},
			Sampling{Sample: true, Temperature: 0.5, TopP: 0.8, RepetitionPenalty: 1.5, Seed: 1}, false},
		{"temperature without sampling", hf, Sampling{Temperature: 0.7}, Sampling{}, true},
		{"negative penalty", hf, Sampling{RepetitionPenalty: -1}, Sampling{}, true},
		{"top_p above 1", hf, Sampling{Sample: true, TopP: 1.5}, Sampling{}, true},
		{"negative temperature", hf, Sampling{Sample: true, Temperature: -1}, Sampling{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveSampling(tc.def, tc.req)
			if tc.bad {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v (%v), want %+v", got, err, tc.want)
			}
		})
	}
	a, _ := ResolveSampling(hf, Sampling{Sample: true})
	b, _ := ResolveSampling(hf, Sampling{Sample: true})
	if a.Seed == 0 || a.Seed == b.Seed {
		t.Fatalf("seed 0 should draw distinct random seeds, got %d and %d", a.Seed, b.Seed)
	}
}
