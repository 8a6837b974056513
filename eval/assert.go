package eval

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// check evaluates the per-run checks of one assertion item.
func (rn *Runner) check(ctx context.Context, a *Assertion, r *Run, imgs []clientImage, res *Result) []Check {
	var out []Check
	add := func(name string, pass bool, format string, args ...any) {
		c := Check{Name: name, Pass: pass}
		if !pass {
			c.Detail = fmt.Sprintf(format, args...)
		}
		out = append(out, c)
	}
	text := res.Output
	if a.Equals != nil {
		add("equals "+quote(*a.Equals), text == *a.Equals, "output is %s", quote(text))
	}
	if a.Contains != nil {
		add("contains "+quote(*a.Contains), strings.Contains(text, *a.Contains), "output %s does not contain it", quote(text))
	}
	if a.NotContains != nil {
		add("not-contains "+quote(*a.NotContains), !strings.Contains(text, *a.NotContains), "output %s contains it", quote(text))
	}
	if a.Regex != nil {
		re, err := regexp.Compile(*a.Regex)
		if err != nil {
			add("regex "+quote(*a.Regex), false, "bad regex: %v", err)
		} else {
			add("regex "+quote(*a.Regex), re.MatchString(text), "output %s does not match", quote(text))
		}
	}
	if a.OneOf != nil {
		add(fmt.Sprintf("one-of %d values", len(a.OneOf)), contains(a.OneOf, text), "output %s is none of %s", quote(text), quoteList(a.OneOf))
	}
	n := utf8.RuneCountInString(text)
	if a.MinChars != nil {
		add(fmt.Sprintf("min-chars %d", *a.MinChars), n >= *a.MinChars, "output has %d characters", n)
	}
	if a.MaxChars != nil {
		add(fmt.Sprintf("max-chars %d", *a.MaxChars), n <= *a.MaxChars, "output has %d characters", n)
	}
	if a.MinTokens != nil {
		add(fmt.Sprintf("min-tokens %d", *a.MinTokens), len(res.TokenIDs) >= *a.MinTokens, "%d tokens generated", len(res.TokenIDs))
	}
	if a.MaxTokens != nil {
		add(fmt.Sprintf("max-tokens %d", *a.MaxTokens), len(res.TokenIDs) <= *a.MaxTokens, "%d tokens generated", len(res.TokenIDs))
	}
	if a.MaxLatency != nil {
		lat := time.Duration(res.LatencyMS * float64(time.Millisecond))
		add("max-latency "+a.MaxLatency.String(), lat <= *a.MaxLatency, "took %v", lat.Round(time.Millisecond))
	}
	if a.Top != nil {
		got := res.Output
		if res.Label != "" {
			got = res.Label
		}
		add("top "+quote(*a.Top), got == *a.Top || res.Output == *a.Top, "best is %s (%s)", quote(got), scoreSummary(res.Scores))
	}
	if a.Dims != nil {
		add(fmt.Sprintf("dims %d", *a.Dims), res.Dims == *a.Dims, "embeddings have %d dims", res.Dims)
	}
	if m := a.MatchScore; m != nil {
		out = append(out, rn.matchScore(ctx, m, r, imgs, res))
	}
	return out
}

// matchScore checks a match-score assertion: the score of the text (the
// output by default) against the run's first image, from the case's own
// scores (a match case without a model) or a Match call.
func (rn *Runner) matchScore(ctx context.Context, m *MatchScore, r *Run, imgs []clientImage, res *Result) Check {
	text := m.Text
	if text == "" {
		text = res.Output
	}
	model := m.Model
	name := fmt.Sprintf("match-score %s", quote(text))
	if m.Min != nil {
		name += fmt.Sprintf(" >= %g", *m.Min)
	}
	if m.Max != nil {
		name += fmt.Sprintf(" <= %g", *m.Max)
	}
	fail := func(format string, a ...any) Check {
		return Check{Name: name, Detail: fmt.Sprintf(format, a...)}
	}
	var score Score
	found := false
	if model == "" && r.Task == TaskMatch {
		for _, s := range res.Scores {
			if s.Text == text {
				score, found = s, true
				break
			}
		}
		if !found {
			return fail("%s is not one of the case's texts (name a match model to score other texts)", quote(text))
		}
	} else {
		if model == "" {
			model = rn.MatchModel
		}
		if model == "" {
			return fail("no match model (set match-score.model or defaults.match-model)")
		}
		if len(imgs) == 0 {
			return fail("the case has no image to score")
		}
		resp, err := rn.Client.Model(model).Match(ctx, imgs[0], text)
		if err != nil {
			return fail("match on model %s: %s", model, describeError(err))
		}
		ss := scoresOf(resp, nil)
		if len(ss) != 1 {
			return fail("model %s returned %d scores for 1 text", model, len(ss))
		}
		score = ss[0]
		name += " (" + model + ")"
	}
	v, ok := score.metric(m.Metric)
	metric := m.Metric
	if metric == "" {
		metric = score.defaultMetric()
	}
	name = strings.Replace(name, "match-score", "match-score "+metric, 1)
	if !ok {
		return fail("the model gives no %s score", metric)
	}
	if m.Min != nil && v < *m.Min {
		return fail("%s is %.4g", metric, v)
	}
	if m.Max != nil && v > *m.Max {
		return fail("%s is %.4g", metric, v)
	}
	return Check{Name: name, Pass: true}
}

// groupChecks evaluates consistent and varies over each group of runs
// (the repeats of one case, variable combination and image).
func groupChecks(runs []*Run, results []*Result) {
	groups := map[string][]int{}
	var order []string
	for i, r := range runs {
		if _, ok := groups[r.Group]; !ok {
			order = append(order, r.Group)
		}
		groups[r.Group] = append(groups[r.Group], i)
	}
	for _, g := range order {
		idx := groups[g]
		var ok []*Result
		failed := 0
		for _, i := range idx {
			if results[i].Error == "" {
				ok = append(ok, results[i])
			} else {
				failed++
			}
		}
		distinct := distinctOutputs(ok)
		for _, a := range runs[idx[0]].Assert {
			for _, want := range []struct {
				p    *bool
				name string
			}{{a.Consistent, "consistent"}, {a.Varies, "varies"}} {
				if want.p == nil {
					continue
				}
				name := want.name
				if !*want.p {
					name = "not " + name
				}
				c := Check{Name: name + fmt.Sprintf(" over %d repeats", len(idx))}
				varies := distinct > 1
				switch {
				case failed > 0:
					c.Detail = fmt.Sprintf("%d of %d repeats failed to run", failed, len(idx))
				case (want.name == "varies") == *want.p:
					c.Pass = varies
				default:
					c.Pass = !varies
				}
				if !c.Pass && c.Detail == "" {
					c.Detail = fmt.Sprintf("%d distinct outputs: %s", distinct, outputsSummary(ok))
				}
				for _, i := range idx {
					results[i].Checks = append(results[i].Checks, c)
				}
			}
		}
	}
}

// distinctOutputs counts the different outputs (text, token ids, scores
// and embeddings) among results.
func distinctOutputs(rs []*Result) int {
	var uniq []*Result
	for _, r := range rs {
		dup := false
		for _, u := range uniq {
			if sameOutput(r, u) {
				dup = true
				break
			}
		}
		if !dup {
			uniq = append(uniq, r)
		}
	}
	return len(uniq)
}

// sameOutput reports whether two results are the same answer: equal text
// and token ids, and scores and embeddings within 1e-5.
func sameOutput(a, b *Result) bool {
	if a.Output != b.Output || len(a.TokenIDs) != len(b.TokenIDs) || len(a.Scores) != len(b.Scores) || len(a.Embeddings) != len(b.Embeddings) {
		return false
	}
	for i := range a.TokenIDs {
		if a.TokenIDs[i] != b.TokenIDs[i] {
			return false
		}
	}
	for i := range a.Scores {
		if !a.Scores[i].close(b.Scores[i], 1e-5) {
			return false
		}
	}
	for i := range a.Embeddings {
		if len(a.Embeddings[i]) != len(b.Embeddings[i]) {
			return false
		}
		for j := range a.Embeddings[i] {
			if math.Abs(float64(a.Embeddings[i][j]-b.Embeddings[i][j])) > 1e-5 {
				return false
			}
		}
	}
	return true
}

func outputsSummary(rs []*Result) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%s=%s", r.ID, quote(truncate(r.Output, 40))))
		if len(parts) == 4 {
			parts = append(parts, "...")
			break
		}
	}
	return strings.Join(parts, ", ")
}

func scoreSummary(ss []Score) string {
	var parts []string
	for _, s := range ss {
		v, _ := s.metric("")
		name := s.Text
		if s.Label != "" {
			name = s.Label
		}
		parts = append(parts, fmt.Sprintf("%s=%.4g", name, v))
	}
	return strings.Join(parts, " ")
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
