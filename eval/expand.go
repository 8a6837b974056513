package eval

import (
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// DefaultTimeout bounds one run of a case when the suite sets none.
const DefaultTimeout = 2 * time.Minute

// Run is one concrete execution of a case: variables substituted, one
// image (or all, for embed), one repeat or seed.
type Run struct {
	// ID is the case id plus what the run was expanded over, e.g.
	// "zero-shot[label=cat]@rocket.jpg#seed=2".
	ID string
	// Case is the case it comes from.
	Case *Case
	// Group identifies the runs that differ only by repeat or seed (for
	// consistent and varies).
	Group string
	// Vars are the values of the variables for this run.
	Vars map[string]string
	// Task, Model, Prompt, Texts as sent; Labels[i] is the label of
	// Texts[i] ("" when the text has none).
	Task, Model, Prompt string
	Texts, Labels       []string
	// Images are the image paths as written in the suite; Files the
	// resolved paths.
	Images, Files []string
	// Options are the merged decoding options.
	Options *Options
	// Seed is the run's seed (nil: none given); Repeat its 1-based repeat.
	Seed   *uint64
	Repeat int
	// Timeout bounds the run.
	Timeout time.Duration
	// Assert are the assertions with variables substituted.
	Assert []*Assertion
}

// Filter selects cases: a case is kept when it has one of Tags (if any)
// and its id or a run's id matches one of IDs (if any), shell-glob style
// (e.g. "caption-*").
type Filter struct {
	Tags []string
	IDs  []string
}

func (f Filter) keepCase(c *Case) bool {
	if len(f.Tags) > 0 {
		ok := false
		for _, t := range c.Tags {
			ok = ok || contains(f.Tags, t)
		}
		if !ok {
			return false
		}
	}
	return true
}

func (f Filter) keepRun(r *Run) bool {
	if len(f.IDs) == 0 {
		return true
	}
	for _, pat := range f.IDs {
		if globMatch(pat, r.Case.ID) || globMatch(pat, r.ID) {
			return true
		}
	}
	return false
}

// globMatch is path.Match with "/" not special; a pattern also matches
// itself literally (ids contain [ and ]).
func globMatch(pat, s string) bool {
	if pat == s {
		return true
	}
	pat = strings.ReplaceAll(pat, "/", "\x00")
	s = strings.ReplaceAll(s, "/", "\x00")
	ok, err := path.Match(pat, s)
	return err == nil && ok
}

var placeholderRe = regexp.MustCompile(`\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// placeholders lists the variable names a template uses.
func placeholders(t string) []string {
	var out []string
	for _, m := range placeholderRe.FindAllStringSubmatch(t, -1) {
		if m[1] != "" && !contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// expandTemplate substitutes {name} from vars ("{{" and "}}" are literal
// braces); unknown names are left as they are (validation reports them).
func expandTemplate(t string, vars map[string]string) string {
	return placeholderRe.ReplaceAllStringFunc(t, func(m string) string {
		switch m {
		case "{{":
			return "{"
		case "}}":
			return "}"
		}
		if v, ok := vars[m[1:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// Expand turns the suite's cases (those f keeps) into runs: one per
// combination of the values of the list variables the case uses, per
// image (all images at once for embed), per repeat or seed.
func (s *Suite) Expand(f Filter) []*Run {
	var out []*Run
	for _, c := range s.Cases {
		if !f.keepCase(c) {
			continue
		}
		for _, r := range s.expandCase(c) {
			if f.keepRun(r) {
				out = append(out, r)
			}
		}
	}
	return out
}

func (s *Suite) expandCase(c *Case) []*Run {
	all := s.caseVars(c)
	used := map[string]bool{}
	note := func(t string) {
		for _, n := range placeholders(t) {
			used[n] = true
		}
	}
	note(c.Prompt)
	note(c.Model)
	for _, t := range c.Images {
		note(t)
	}
	for _, t := range c.Texts {
		note(t)
	}
	for _, a := range c.Assert {
		for _, t := range a.templates() {
			note(t)
		}
	}
	// Constants are substituted; lists used by the case expand it.
	consts := map[string]string{}
	var axes []string
	values := map[string][]string{}
	for _, name := range sortedKeys(all) {
		vs, err := varValues(all[name])
		if err != nil {
			continue
		}
		if _, isList := all[name].([]any); isList && used[name] {
			axes = append(axes, name)
			values[name] = vs
		} else {
			consts[name] = vs[0]
		}
	}
	combos := []map[string]string{{}}
	for _, ax := range axes {
		var next []map[string]string
		for _, base := range combos {
			for _, v := range values[ax] {
				m := map[string]string{ax: v}
				for k, x := range base {
					m[k] = x
				}
				next = append(next, m)
			}
		}
		combos = next
	}
	labels, _ := varValues(c.Labels)
	opts := mergeOptions(s.Defaults.Options, c.Options)
	timeout := c.Timeout
	if timeout == 0 {
		timeout = s.Defaults.Timeout
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	var out []*Run
	for _, combo := range combos {
		vars := map[string]string{}
		for k, v := range consts {
			vars[k] = v
		}
		var suffix []string
		for _, ax := range axes {
			vars[ax] = combo[ax]
			suffix = append(suffix, ax+"="+combo[ax])
		}
		base := c.ID
		if len(suffix) > 0 {
			base += "[" + strings.Join(suffix, ",") + "]"
		}
		model := expandTemplate(c.Model, vars)
		if model == "" {
			model = s.Defaults.Model
		}
		var texts, textLabels []string
		for _, t := range c.Texts {
			if contains(placeholders(t), "label") && len(labels) > 0 {
				for _, l := range labels {
					lv := map[string]string{"label": l}
					for k, v := range vars {
						lv[k] = v
					}
					texts = append(texts, expandTemplate(t, lv))
					textLabels = append(textLabels, l)
				}
				continue
			}
			texts = append(texts, expandTemplate(t, vars))
			textLabels = append(textLabels, "")
		}
		var images [][]string
		if c.Task == TaskEmbed {
			images = [][]string{c.Images}
		} else {
			for _, im := range c.Images {
				images = append(images, []string{im})
			}
		}
		asserts := make([]*Assertion, len(c.Assert))
		for i, a := range c.Assert {
			asserts[i] = a.expand(vars)
		}
		for _, ims := range images {
			id := base
			var names, files []string
			for _, im := range ims {
				im = expandTemplate(im, vars)
				names = append(names, im)
				files = append(files, s.resolve(im))
			}
			if len(images) > 1 {
				id += "@" + filepath.Base(names[0])
			}
			reps := c.Repeat
			if reps < 1 {
				reps = 1
			}
			if len(c.Seeds) > 0 {
				reps = len(c.Seeds)
			}
			for k := 0; k < reps; k++ {
				r := &Run{
					ID: id, Case: c, Group: id, Vars: vars, Task: c.Task, Model: model,
					Prompt: expandTemplate(c.Prompt, vars), Texts: texts, Labels: textLabels,
					Images: names, Files: files, Options: opts, Repeat: k + 1, Timeout: timeout, Assert: asserts,
				}
				if len(c.Seeds) > 0 {
					seed := c.Seeds[k]
					r.Seed = &seed
					r.ID += fmt.Sprintf("#seed=%d", seed)
				} else if reps > 1 {
					r.ID += fmt.Sprintf("#%d", k+1)
				}
				out = append(out, r)
			}
		}
	}
	return out
}

func (a *Assertion) expand(vars map[string]string) *Assertion {
	b := *a
	sub := func(p *string) *string {
		if p == nil {
			return nil
		}
		v := expandTemplate(*p, vars)
		return &v
	}
	b.Equals, b.Contains, b.NotContains, b.Regex, b.Top = sub(a.Equals), sub(a.Contains), sub(a.NotContains), sub(a.Regex), sub(a.Top)
	if a.OneOf != nil {
		b.OneOf = make([]string, len(a.OneOf))
		for i, o := range a.OneOf {
			b.OneOf[i] = expandTemplate(o, vars)
		}
	}
	if a.MatchScore != nil {
		m := *a.MatchScore
		m.Text, m.Model = expandTemplate(m.Text, vars), expandTemplate(m.Model, vars)
		b.MatchScore = &m
	}
	return &b
}

// mergeOptions overlays over on base (either may be nil).
func mergeOptions(base, over *Options) *Options {
	out := &Options{}
	for _, o := range []*Options{base, over} {
		if o == nil {
			continue
		}
		if o.MaxNewTokens != nil {
			out.MaxNewTokens = o.MaxNewTokens
		}
		if o.MinNewTokens != nil {
			out.MinNewTokens = o.MinNewTokens
		}
		if o.NumBeams != nil {
			out.NumBeams = o.NumBeams
		}
		if o.DoSample != nil {
			out.DoSample = o.DoSample
		}
		if o.Temperature != nil {
			out.Temperature = o.Temperature
		}
		if o.TopK != nil {
			out.TopK = o.TopK
		}
		if o.TopP != nil {
			out.TopP = o.TopP
		}
		if o.RepetitionPenalty != nil {
			out.RepetitionPenalty = o.RepetitionPenalty
		}
		if o.LengthPenalty != nil {
			out.LengthPenalty = o.LengthPenalty
		}
		if o.NoRepeatNgramSize != nil {
			out.NoRepeatNgramSize = o.NoRepeatNgramSize
		}
		if o.EarlyStopping != nil {
			out.EarlyStopping = o.EarlyStopping
		}
		if o.Seed != nil {
			out.Seed = o.Seed
		}
		if o.Stop != nil {
			out.Stop = o.Stop
		}
	}
	return out
}
