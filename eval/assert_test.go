package eval

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func sp(s string) *string               { return &s }
func ip(i int) *int                     { return &i }
func fp(f float64) *float64             { return &f }
func bp(b bool) *bool                   { return &b }
func dp(d time.Duration) *time.Duration { return &d }
func f32(f float32) *float32            { return &f }

// TestChecks runs every per-run assertion once where it holds and once
// where it does not.
func TestChecks(t *testing.T) {
	gen := &Result{Task: TaskCaption, Output: "a cat on a sofa", TokenIDs: []int32{5, 6, 7, 8, 9}, LatencyMS: 120}
	match := &Result{Task: TaskMatch, Output: "a photo of a dog", Label: "dog", Scores: []Score{
		{Text: "a photo of a cat", Label: "cat", Cosine: f32(0.44), Logit: f32(5.4)},
		{Text: "a photo of a dog", Label: "dog", Cosine: f32(0.49), Logit: f32(6.0)},
	}}
	itm := &Result{Task: TaskMatch, Output: "b", Scores: []Score{
		{Text: "a", ITMProbability: f32(0.2), Cosine: f32(0.9)},
		{Text: "b", ITMProbability: f32(0.7), Cosine: f32(0.1)},
	}}
	emb := &Result{Task: TaskEmbed, Dims: 16}
	tests := []struct {
		name string
		res  *Result
		a    Assertion
		pass bool
	}{
		{"equals", gen, Assertion{Equals: sp("a cat on a sofa")}, true},
		{"equals other", gen, Assertion{Equals: sp("a cat")}, false},
		{"contains", gen, Assertion{Contains: sp("sofa")}, true},
		{"contains missing", gen, Assertion{Contains: sp("dog")}, false},
		{"not-contains", gen, Assertion{NotContains: sp("dog")}, true},
		{"not-contains present", gen, Assertion{NotContains: sp("cat")}, false},
		{"regex", gen, Assertion{Regex: sp(`^a \w+ on`)}, true},
		{"regex no match", gen, Assertion{Regex: sp(`^the`)}, false},
		{"one-of", gen, Assertion{OneOf: []string{"x", "a cat on a sofa"}}, true},
		{"one-of none", gen, Assertion{OneOf: []string{"x", "y"}}, false},
		{"min-chars", gen, Assertion{MinChars: ip(15)}, true},
		{"min-chars short", gen, Assertion{MinChars: ip(16)}, false},
		{"max-chars", gen, Assertion{MaxChars: ip(15)}, true},
		{"max-chars long", gen, Assertion{MaxChars: ip(14)}, false},
		{"min-tokens", gen, Assertion{MinTokens: ip(5)}, true},
		{"min-tokens few", gen, Assertion{MinTokens: ip(6)}, false},
		{"max-tokens", gen, Assertion{MaxTokens: ip(5)}, true},
		{"max-tokens many", gen, Assertion{MaxTokens: ip(4)}, false},
		{"max-latency", gen, Assertion{MaxLatency: dp(200 * time.Millisecond)}, true},
		{"max-latency slow", gen, Assertion{MaxLatency: dp(100 * time.Millisecond)}, false},
		{"top label", match, Assertion{Top: sp("dog")}, true},
		{"top text", match, Assertion{Top: sp("a photo of a dog")}, true},
		{"top wrong", match, Assertion{Top: sp("cat")}, false},
		{"own score min", match, Assertion{MatchScore: &MatchScore{Text: "a photo of a cat", Min: fp(0.4)}}, true},
		{"own score below min", match, Assertion{MatchScore: &MatchScore{Text: "a photo of a cat", Min: fp(0.45)}}, false},
		{"own score max", match, Assertion{MatchScore: &MatchScore{Text: "a photo of a dog", Max: fp(0.5)}}, true},
		{"own score above max", match, Assertion{MatchScore: &MatchScore{Text: "a photo of a dog", Max: fp(0.48)}}, false},
		{"logit metric", match, Assertion{MatchScore: &MatchScore{Text: "a photo of a dog", Min: fp(5.9), Metric: MetricLogit}}, true},
		{"missing metric", match, Assertion{MatchScore: &MatchScore{Text: "a photo of a dog", Min: fp(0), Metric: MetricITM}}, false},
		{"unknown text", match, Assertion{MatchScore: &MatchScore{Text: "a bird", Min: fp(0)}}, false},
		{"itm default metric", itm, Assertion{MatchScore: &MatchScore{Text: "b", Min: fp(0.6)}}, true},
		{"itm default metric fails", itm, Assertion{MatchScore: &MatchScore{Text: "a", Min: fp(0.5)}}, false},
		{"cosine metric", itm, Assertion{MatchScore: &MatchScore{Text: "a", Min: fp(0.5), Metric: MetricCosine}}, true},
		{"no match model", gen, Assertion{MatchScore: &MatchScore{Min: fp(0)}}, false},
		{"dims", emb, Assertion{Dims: ip(16)}, true},
		{"dims wrong", emb, Assertion{Dims: ip(32)}, false},
	}
	rn := &Runner{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run := &Run{Task: tc.res.Task}
			checks := rn.check(context.Background(), &tc.a, run, nil, tc.res)
			if len(checks) != 1 {
				t.Fatalf("%d checks, want 1: %+v", len(checks), checks)
			}
			c := checks[0]
			if c.Pass != tc.pass {
				t.Errorf("pass = %v, want %v (%s: %s)", c.Pass, tc.pass, c.Name, c.Detail)
			}
			if !c.Pass && c.Detail == "" {
				t.Errorf("failed check %s has no detail", c.Name)
			}
		})
	}
	// Several keys in one item are several checks.
	checks := rn.check(context.Background(), &Assertion{MinChars: ip(1), MaxChars: ip(3), Contains: sp("cat")}, &Run{Task: TaskCaption}, nil, gen)
	equal(t, 3, len(checks))
	var passed []bool
	for _, c := range checks {
		passed = append(passed, c.Pass)
	}
	equal(t, []bool{true, true, false}, passed, "contains, min-chars, max-chars")
}

func TestGroupChecks(t *testing.T) {
	mk := func(group string, a *Assertion, outputs ...string) ([]*Run, []*Result) {
		var runs []*Run
		var res []*Result
		for i, o := range outputs {
			runs = append(runs, &Run{ID: fmt.Sprintf("%s#%d", group, i+1), Group: group, Assert: []*Assertion{a}})
			r := &Result{ID: runs[i].ID, Output: o}
			if o == "ERR" {
				r.Error = "boom"
			}
			res = append(res, r)
		}
		return runs, res
	}
	tests := []struct {
		name    string
		a       *Assertion
		outputs []string
		pass    bool
	}{
		{"consistent", &Assertion{Consistent: bp(true)}, []string{"x", "x", "x"}, true},
		{"inconsistent", &Assertion{Consistent: bp(true)}, []string{"x", "y", "x"}, false},
		{"varies", &Assertion{Varies: bp(true)}, []string{"x", "y"}, true},
		{"does not vary", &Assertion{Varies: bp(true)}, []string{"x", "x"}, false},
		{"consistent false means varies", &Assertion{Consistent: bp(false)}, []string{"x", "y"}, true},
		{"varies false means consistent", &Assertion{Varies: bp(false)}, []string{"x", "y"}, false},
		{"a failed repeat fails the group", &Assertion{Consistent: bp(true)}, []string{"x", "ERR"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runs, res := mk("g", tc.a, tc.outputs...)
			// Another group in the same batch must not interfere.
			r2, res2 := mk("h", tc.a, "z", "w")
			groupChecks(append(runs, r2...), append(res, res2...))
			for _, r := range res {
				if len(r.Checks) != 1 {
					t.Fatalf("%s has %d checks", r.ID, len(r.Checks))
				}
				if r.Checks[0].Pass != tc.pass {
					t.Errorf("%s: pass = %v, want %v (%s)", r.ID, r.Checks[0].Pass, tc.pass, r.Checks[0].Detail)
				}
			}
		})
	}
	// Token ids and scores count too, not only the text.
	a := &Assertion{Consistent: bp(true)}
	runs := []*Run{{ID: "a", Group: "g", Assert: []*Assertion{a}}, {ID: "b", Group: "g", Assert: []*Assertion{a}}}
	res := []*Result{{Output: "x", TokenIDs: []int32{1}}, {Output: "x", TokenIDs: []int32{2}}}
	groupChecks(runs, res)
	isTrue(t, !res[0].Checks[0].Pass, "different token ids are different outputs")
	res = []*Result{{Scores: []Score{{Text: "t", Cosine: f32(0.5)}}}, {Scores: []Score{{Text: "t", Cosine: f32(0.5 + 1e-7)}}}}
	groupChecks(runs, res)
	isTrue(t, res[0].Checks[0].Pass, "scores within 1e-5 are the same")
}
