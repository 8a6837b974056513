// Package eval runs suites of multimodal prompt tests against a Glimpse
// server: YAML files of cases (images, a task, a prompt, decoding options)
// with assertions on what the model answers, expanded over template
// variables and seeds, run concurrently through the Go client SDK (against
// a server, or a server started in-process), and reported as a table, JSON
// and JUnit XML, optionally compared with an earlier run.
//
// The command-line front end is Main (`glimpse eval`); the pieces are
// LoadSuite (parse and validate), Suite.Expand (template expansion and
// filters), Runner.Run (execution and assertions) and the Report writers.
// examples/README.md documents the suite format.
package eval

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Tasks a case can run.
const (
	TaskCaption  = "caption"
	TaskAsk      = "ask"
	TaskMatch    = "match"
	TaskEmbed    = "embed"
	TaskGenerate = "generate"
)

var tasks = []string{TaskCaption, TaskAsk, TaskMatch, TaskEmbed, TaskGenerate}

// generative reports whether a task produces text token by token.
func generative(task string) bool {
	return task == TaskCaption || task == TaskAsk || task == TaskGenerate
}

// Suite is a parsed, validated test suite.
type Suite struct {
	// Name names the suite in reports (default: the file name without
	// extension).
	Name string `yaml:"name"`
	// Description is free text.
	Description string `yaml:"description"`
	// Defaults apply to every case.
	Defaults Defaults `yaml:"defaults"`
	// Vars are variables every case may use in its templates: a string is
	// a constant (e.g. a few-shot prefix), a list expands each case that
	// uses it into one run per value.
	Vars map[string]any `yaml:"vars"`
	// Cases are the test cases, in order.
	Cases []*Case `yaml:"cases"`

	// Path is the suite file; Dir its folder (images and model folders are
	// relative to it).
	Path string `yaml:"-"`
	Dir  string `yaml:"-"`

	file *ast.File
}

// Defaults are the suite-wide settings.
type Defaults struct {
	// Addr is a server address (HOST:PORT) to run against when the command
	// line gives none; empty = in-process.
	Addr string `yaml:"addr"`
	// Model is the served model name a case uses when it names none
	// (empty: the server's default model).
	Model string `yaml:"model"`
	// Models are checkpoint folders (relative to the suite) to load when
	// running in-process; empty = the built-in default models.
	Models []ModelDir `yaml:"models"`
	// MatchModel is the model match-score assertions use when they name
	// none (a BLIP retrieval or CLIP model).
	MatchModel string `yaml:"match-model"`
	// Options are decoding options for every generative case.
	Options *Options `yaml:"options"`
	// Timeout bounds one run of a case (default 2 minutes).
	Timeout time.Duration `yaml:"timeout"`
	// Parallel is how many runs go at once (the --parallel flag wins).
	Parallel int `yaml:"parallel"`
}

// ModelDir is a checkpoint folder served in-process under Name.
type ModelDir struct {
	Name string `yaml:"name"`
	Dir  string `yaml:"dir"`
}

// Case is one test case: a task on one or more images, with assertions.
type Case struct {
	// ID identifies the case (unique in the suite; letters, digits and
	// - _ . / only). Runs expanded from it get suffixes.
	ID string `yaml:"id"`
	// Description is free text.
	Description string `yaml:"description"`
	// Tags select cases with --tag.
	Tags []string `yaml:"tags"`
	// Task is caption, ask, match, embed or generate.
	Task string `yaml:"task"`
	// Model is the served model name (default: Defaults.Model).
	Model string `yaml:"model"`
	// Image is one image file; Images several (relative to the suite).
	// Caption, ask, match and generate run once per image; embed sends
	// them all in one request.
	Image  string   `yaml:"image"`
	Images []string `yaml:"images"`
	// Prompt is the caption prefix (caption, generate) or the question
	// (ask).
	Prompt string `yaml:"prompt"`
	// Texts are the texts to score (match) or embed (embed). A text with
	// {label} is repeated for every entry of Labels.
	Texts []string `yaml:"texts"`
	// Labels is a zero-shot label set for {label} in Texts.
	Labels []any `yaml:"labels"`
	// Vars are this case's template variables (they override the
	// suite's): a list expands the case into one run per value.
	Vars map[string]any `yaml:"vars"`
	// Options override the default decoding options.
	Options *Options `yaml:"options"`
	// Repeat runs the case this many times (default 1).
	Repeat int `yaml:"repeat"`
	// Seeds runs the case once per seed (sampling's random seed).
	Seeds []uint64 `yaml:"seeds"`
	// Timeout bounds one run (default: Defaults.Timeout).
	Timeout time.Duration `yaml:"timeout"`
	// Assert are the assertions every run must satisfy.
	Assert []*Assertion `yaml:"assert"`

	index int // position in Suite.Cases
}

// Options are decoding options (unset fields: the checkpoint's
// generation_config.json).
type Options struct {
	MaxNewTokens      *int     `yaml:"max-new-tokens"`
	MinNewTokens      *int     `yaml:"min-new-tokens"`
	NumBeams          *int     `yaml:"num-beams"`
	DoSample          *bool    `yaml:"do-sample"`
	Temperature       *float64 `yaml:"temperature"`
	TopK              *int     `yaml:"top-k"`
	TopP              *float64 `yaml:"top-p"`
	RepetitionPenalty *float64 `yaml:"repetition-penalty"`
	LengthPenalty     *float64 `yaml:"length-penalty"`
	NoRepeatNgramSize *int     `yaml:"no-repeat-ngram-size"`
	EarlyStopping     *bool    `yaml:"early-stopping"`
	Seed              *uint64  `yaml:"seed"`
	Stop              []string `yaml:"stop"`
}

// Assertion is one item of a case's assert list. Every key set in it is a
// separate check; strings may use template variables.
type Assertion struct {
	// Equals: the output is exactly this.
	Equals *string `yaml:"equals"`
	// Contains: the output contains this.
	Contains *string `yaml:"contains"`
	// NotContains: the output does not contain this.
	NotContains *string `yaml:"not-contains"`
	// Regex: the output matches this regular expression (RE2 syntax).
	Regex *string `yaml:"regex"`
	// OneOf: the output is one of these.
	OneOf []string `yaml:"one-of"`
	// MinChars, MaxChars bound the output's length in characters (runes).
	MinChars *int `yaml:"min-chars"`
	MaxChars *int `yaml:"max-chars"`
	// MinTokens, MaxTokens bound the number of generated tokens.
	MinTokens *int `yaml:"min-tokens"`
	MaxTokens *int `yaml:"max-tokens"`
	// MaxLatency bounds the request's wall time (e.g. "2s").
	MaxLatency *time.Duration `yaml:"max-latency"`
	// MatchScore: the image–text match score of a text is within bounds.
	MatchScore *MatchScore `yaml:"match-score"`
	// Top (match): the best-scoring text, or its label, is this.
	Top *string `yaml:"top"`
	// Consistent: every repeat of the case (same variables and image)
	// gives the same output.
	Consistent *bool `yaml:"consistent"`
	// Varies: the repeats of the case do not all give the same output.
	Varies *bool `yaml:"varies"`
	// Dims (embed): the embeddings have this many dimensions.
	Dims *int `yaml:"dims"`
}

// MatchScore bounds an image–text match score.
type MatchScore struct {
	// Text is the text scored against the image (default: the output of a
	// generative case; required for match and embed cases).
	Text string `yaml:"text"`
	// Min and Max bound the score (at least one).
	Min *float64 `yaml:"min"`
	Max *float64 `yaml:"max"`
	// Model scores the pair (a BLIP retrieval or CLIP model; default:
	// Defaults.MatchModel, or for a match case its own model and scores).
	Model string `yaml:"model"`
	// Metric is itm-probability, cosine or logit (default: itm-probability
	// when the model gives it, else cosine).
	Metric string `yaml:"metric"`
}

// Metrics of a match score.
const (
	MetricITM    = "itm-probability"
	MetricCosine = "cosine"
	MetricLogit  = "logit"
)

// SuiteError is a problem in a suite file, with the line it is on when
// known.
type SuiteError struct {
	Path string
	Line int // 0 when unknown
	Msg  string
}

func (e *SuiteError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// LoadSuite reads, parses and validates the suite at path. Every problem
// found is returned (joined), each a *SuiteError with its line.
func LoadSuite(path string) (*Suite, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading suite: %w", err)
	}
	return ParseSuite(path, data)
}

// ParseSuite parses and validates a suite whose file is path (used for
// messages and to resolve relative paths) and content data.
func ParseSuite(path string, data []byte) (*Suite, error) {
	s := &Suite{Path: path, Dir: filepath.Dir(path)}
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, yamlError(path, err)
	}
	s.file = file
	if err := checkDurations(path, file); err != nil {
		return nil, err
	}
	if err := yaml.UnmarshalWithOptions(data, s, yaml.DisallowUnknownField()); err != nil {
		return nil, yamlError(path, err)
	}
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// yamlError turns a go-yaml error into a SuiteError with its line.
func yamlError(path string, err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		line := 0
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			line = tk.Position.Line
		}
		msg := ye.GetMessage()
		var te *yaml.TypeError
		if errors.As(err, &te) && te.Token != nil && te.DstType != nil {
			msg = fmt.Sprintf("%q is not %s", te.Token.Value, kindName(te.DstType))
			if key := keyOf(te.Token); key != "" {
				msg = key + ": " + msg
			}
		}
		msg = strings.ReplaceAll(msg, "eval.", "")
		if strings.Contains(msg, "unknown field") {
			msg += " (see examples/README.md for the suite format)"
		}
		return &SuiteError{Path: path, Line: line, Msg: msg}
	}
	return &SuiteError{Path: path, Msg: err.Error()}
}

// durationVisitor collects bad values of duration keys.
type durationVisitor struct {
	path string
	errs []error
}

func (v *durationVisitor) Visit(n ast.Node) ast.Visitor {
	mv, ok := n.(*ast.MappingValueNode)
	if !ok || mv.Key == nil || mv.Value == nil {
		return v
	}
	switch key := mv.Key.String(); key {
	case "timeout", "max-latency":
		raw := strings.Trim(mv.Value.String(), `"'`)
		if _, err := time.ParseDuration(raw); err != nil {
			line := 0
			if tk := mv.Value.GetToken(); tk != nil && tk.Position != nil {
				line = tk.Position.Line
			}
			v.errs = append(v.errs, &SuiteError{Path: v.path, Line: line,
				Msg: fmt.Sprintf("%s: %q is not a duration (e.g. 2s, 500ms, 1m30s)", key, raw)})
		}
	}
	return v
}

// checkDurations reports duration values time.ParseDuration rejects, with
// their lines (the YAML decoder's own error has none).
func checkDurations(path string, f *ast.File) error {
	v := &durationVisitor{path: path}
	for _, d := range f.Docs {
		if d.Body != nil {
			ast.Walk(v, d.Body)
		}
	}
	return errors.Join(v.errs...)
}

// keyOf is the mapping key a value token belongs to ("" if none).
func keyOf(tk *token.Token) string {
	for p := tk.Prev; p != nil; p = p.Prev {
		if p.Type == token.MappingValueType {
			if p.Prev != nil {
				return p.Prev.Value
			}
			return ""
		}
		if p.Position != nil && tk.Position != nil && p.Position.Line != tk.Position.Line {
			return ""
		}
	}
	return ""
}

// kindName describes a Go type for a suite author.
func kindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "a duration (e.g. 2s, 500ms)"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Slice:
		return "a list"
	case t.Kind() == reflect.Map || t.Kind() == reflect.Struct:
		return "a mapping (key: value)"
	}
	return "a " + t.String()
}

// line is the line of the YAML node at a path like "$.cases[2].task" (0
// when not found), falling back to the closest parent that exists.
func (s *Suite) line(p string) int {
	if s.file == nil {
		return 0
	}
	for p != "" && p != "$" {
		yp, err := yaml.PathString(p)
		if err == nil {
			if n, err := yp.FilterFile(s.file); err == nil && n != nil {
				if tk := n.GetToken(); tk != nil && tk.Position != nil {
					return tk.Position.Line
				}
			}
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

var (
	idRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_./-]*$`)
	varRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// validator collects suite errors.
type validator struct {
	s    *Suite
	errs []error
}

func (v *validator) add(path, format string, a ...any) {
	v.errs = append(v.errs, &SuiteError{Path: v.s.Path, Line: v.s.line(path), Msg: fmt.Sprintf(format, a...)})
}

func (s *Suite) validate() error {
	v := &validator{s: s}
	d := &s.Defaults
	if d.Timeout < 0 {
		v.add("$.defaults.timeout", "defaults.timeout must not be negative")
	}
	if d.Parallel < 0 {
		v.add("$.defaults.parallel", "defaults.parallel must be at least 1 (or absent)")
	}
	seenModel := map[string]bool{}
	for i, m := range d.Models {
		p := fmt.Sprintf("$.defaults.models[%d]", i)
		switch {
		case m.Name == "":
			v.add(p, "defaults.models[%d] has no name (want {name: NAME, dir: FOLDER})", i)
		case seenModel[m.Name]:
			v.add(p, "model name %q listed twice in defaults.models", m.Name)
		}
		seenModel[m.Name] = true
		if m.Dir == "" {
			v.add(p, "defaults.models[%d] (%s) has no dir", i, m.Name)
		} else if st, err := os.Stat(s.resolve(m.Dir)); err != nil || !st.IsDir() {
			v.add(p+".dir", "model folder %s (relative to the suite) is not a folder", m.Dir)
		}
	}
	v.options("$.defaults.options", d.Options)
	for name := range s.Vars {
		if !varRe.MatchString(name) || name == "label" {
			v.add("$.vars."+name, "bad variable name %q (letters, digits and _; \"label\" is reserved for labels)", name)
		} else if _, err := varValues(s.Vars[name]); err != nil {
			v.add("$.vars."+name, "vars.%s: %v", name, err)
		}
	}
	if len(s.Cases) == 0 {
		v.add("$", "the suite has no cases (add a cases: list)")
	}
	ids := map[string]int{}
	for i, c := range s.Cases {
		if c == nil {
			v.add(fmt.Sprintf("$.cases[%d]", i), "case %d is empty", i+1)
			continue
		}
		c.index = i
		v.validateCase(c, ids)
	}
	return errors.Join(v.errs...)
}

func (s *Suite) resolve(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.Dir, p)
}

func (v *validator) options(path string, o *Options) {
	if o == nil {
		return
	}
	nonNeg := func(key string, p *int) {
		if p != nil && *p < 0 {
			v.add(path+"."+key, "%s must not be negative", key)
		}
	}
	nonNeg("max-new-tokens", o.MaxNewTokens)
	nonNeg("min-new-tokens", o.MinNewTokens)
	nonNeg("num-beams", o.NumBeams)
	nonNeg("top-k", o.TopK)
	nonNeg("no-repeat-ngram-size", o.NoRepeatNgramSize)
	if o.Temperature != nil && *o.Temperature <= 0 {
		v.add(path+".temperature", "temperature must be > 0")
	}
	if o.TopP != nil && (*o.TopP <= 0 || *o.TopP > 1) {
		v.add(path+".top-p", "top-p must be in (0, 1]")
	}
	if o.RepetitionPenalty != nil && *o.RepetitionPenalty <= 0 {
		v.add(path+".repetition-penalty", "repetition-penalty must be > 0")
	}
}

func (v *validator) validateCase(c *Case, ids map[string]int) {
	s := v.s
	p := fmt.Sprintf("$.cases[%d]", c.index)
	name := c.ID
	switch {
	case c.ID == "":
		v.add(p, "case %d has no id", c.index+1)
		name = fmt.Sprintf("#%d", c.index+1)
	case !idRe.MatchString(c.ID):
		v.add(p+".id", "case id %q: use letters, digits and - _ . / (starting with a letter or digit)", c.ID)
	default:
		if prev, ok := ids[c.ID]; ok {
			v.add(p+".id", "case id %q is used twice (also case %d)", c.ID, prev+1)
		}
		ids[c.ID] = c.index
	}
	bad := func(sub, format string, a ...any) {
		path := p
		if sub != "" {
			path += "." + sub
		}
		v.add(path, "case %s: %s", name, fmt.Sprintf(format, a...))
	}
	if !contains(tasks, c.Task) {
		if c.Task == "" {
			bad("", "no task (want one of %s)", strings.Join(tasks, ", "))
		} else {
			bad("task", "unknown task %q (want one of %s)", c.Task, strings.Join(tasks, ", "))
		}
		return
	}
	imagePath := func(i int) string { return fmt.Sprintf("images[%d]", i) }
	if c.Image != "" {
		c.Images = append([]string{c.Image}, c.Images...)
		c.Image = ""
		imagePath = func(i int) string {
			if i == 0 {
				return "image"
			}
			return fmt.Sprintf("images[%d]", i-1)
		}
	}
	if len(c.Images) == 0 {
		bad("", "no image (add image: FILE or images: [FILE, ...], relative to the suite)")
	}
	vars := s.caseVars(c)
	for name, val := range c.Vars {
		if !varRe.MatchString(name) || name == "label" {
			bad("vars."+name, "bad variable name %q (letters, digits and _; \"label\" is reserved for labels)", name)
		} else if _, err := varValues(val); err != nil {
			bad("vars."+name, "vars.%s: %v", name, err)
		}
	}
	// Every template must name known variables.
	checkTpl := func(sub, t string, allowLabel bool) {
		for _, n := range placeholders(t) {
			if n == "label" && allowLabel {
				continue
			}
			if _, ok := vars[n]; !ok {
				bad(sub, "unknown variable {%s} in %q (define it under vars:, or write {{ for a literal brace)", n, t)
			}
		}
	}
	for i, im := range c.Images {
		sub := imagePath(i)
		checkTpl(sub, im, false)
		if len(placeholders(im)) == 0 {
			if st, err := os.Stat(s.resolve(im)); err != nil || st.IsDir() {
				bad(sub, "image %s not found (paths are relative to the suite file, %s)", im, s.Dir)
			}
		}
	}
	checkTpl("prompt", c.Prompt, false)
	checkTpl("model", c.Model, false)
	for i, t := range c.Texts {
		checkTpl(fmt.Sprintf("texts[%d]", i), t, len(c.Labels) > 0)
	}
	switch c.Task {
	case TaskAsk:
		if strings.TrimSpace(c.Prompt) == "" {
			bad("", "task ask needs a prompt (the question)")
		}
	case TaskMatch:
		if len(c.Texts) == 0 {
			bad("", "task match needs texts to score")
		}
	case TaskEmbed:
		if len(c.Texts) == 0 && len(c.Images) == 0 {
			bad("", "task embed needs images or texts")
		}
	}
	if !generative(c.Task) && c.Prompt != "" {
		bad("prompt", "task %s takes texts, not a prompt", c.Task)
	}
	if generative(c.Task) && len(c.Texts) > 0 {
		bad("texts", "task %s takes a prompt, not texts", c.Task)
	}
	if len(c.Labels) > 0 {
		if c.Task != TaskMatch && c.Task != TaskEmbed {
			bad("labels", "labels are for match and embed texts with {label}")
		}
		used := false
		for _, t := range c.Texts {
			used = used || contains(placeholders(t), "label")
		}
		if !used {
			bad("labels", "labels given but no text uses {label}")
		}
		if _, err := varValues(c.Labels); err != nil {
			bad("labels", "%v", err)
		}
	}
	if !generative(c.Task) && c.Options != nil {
		bad("options", "decoding options apply to caption, ask and generate, not %s", c.Task)
	}
	v.options(p+".options", c.Options)
	if c.Repeat < 0 {
		bad("repeat", "repeat must be at least 1")
	}
	if c.Repeat > 1 && len(c.Seeds) > 0 {
		bad("repeat", "give repeat or seeds, not both (seeds runs once per seed)")
	}
	if c.Timeout < 0 {
		bad("timeout", "timeout must not be negative")
	}
	if len(c.Assert) == 0 {
		bad("", "no assertions (add an assert: list)")
	}
	for i, a := range c.Assert {
		ap := fmt.Sprintf("assert[%d]", i)
		if a == nil || a.empty() {
			bad(ap, "empty assertion (want e.g. contains: TEXT)")
			continue
		}
		for _, t := range a.templates() {
			checkTpl(ap, t, false)
		}
		if a.Regex != nil && len(placeholders(*a.Regex)) == 0 {
			if _, err := regexp.Compile(*a.Regex); err != nil {
				bad(ap+".regex", "bad regex: %v", err)
			}
		}
		if (a.MinTokens != nil || a.MaxTokens != nil) && !generative(c.Task) {
			bad(ap, "min-tokens/max-tokens apply to generated text, not %s", c.Task)
		}
		if a.Top != nil && c.Task != TaskMatch {
			bad(ap+".top", "top applies to match cases")
		}
		if a.Dims != nil && c.Task != TaskEmbed {
			bad(ap+".dims", "dims applies to embed cases")
		}
		if c.Task == TaskEmbed && (a.Equals != nil || a.Contains != nil || a.NotContains != nil || a.Regex != nil || a.OneOf != nil || a.MinChars != nil || a.MaxChars != nil) {
			bad(ap, "embed cases have no text output: use dims, consistent, max-latency or match-score")
		}
		if (a.Consistent != nil || a.Varies != nil) && c.Repeat <= 1 && len(c.Seeds) <= 1 {
			bad(ap, "consistent/varies compare repeats: add repeat: N or seeds: [...]")
		}
		if m := a.MatchScore; m != nil {
			if m.Min == nil && m.Max == nil {
				bad(ap+".match-score", "match-score needs min or max")
			}
			if m.Text == "" && !generative(c.Task) {
				bad(ap+".match-score", "match-score needs text for a %s case", c.Task)
			}
			if m.Model == "" && s.Defaults.MatchModel == "" && c.Task != TaskMatch {
				bad(ap+".match-score", "match-score needs a model (a BLIP retrieval or CLIP model) here or in defaults.match-model")
			}
			switch m.Metric {
			case "", MetricITM, MetricCosine, MetricLogit:
			default:
				bad(ap+".match-score.metric", "unknown metric %q (want %s, %s or %s)", m.Metric, MetricITM, MetricCosine, MetricLogit)
			}
		}
		for _, n := range []struct {
			key string
			p   *int
		}{{"min-chars", a.MinChars}, {"max-chars", a.MaxChars}, {"min-tokens", a.MinTokens}, {"max-tokens", a.MaxTokens}, {"dims", a.Dims}} {
			if n.p != nil && *n.p < 0 {
				bad(ap+"."+n.key, "%s must not be negative", n.key)
			}
		}
		if a.MaxLatency != nil && *a.MaxLatency <= 0 {
			bad(ap+".max-latency", "max-latency must be positive (e.g. 2s)")
		}
	}
}

func (a *Assertion) empty() bool {
	return a.Equals == nil && a.Contains == nil && a.NotContains == nil && a.Regex == nil && a.OneOf == nil &&
		a.MinChars == nil && a.MaxChars == nil && a.MinTokens == nil && a.MaxTokens == nil && a.MaxLatency == nil &&
		a.MatchScore == nil && a.Top == nil && a.Consistent == nil && a.Varies == nil && a.Dims == nil
}

// templates are the assertion's strings that may hold variables.
func (a *Assertion) templates() []string {
	var out []string
	for _, p := range []*string{a.Equals, a.Contains, a.NotContains, a.Regex, a.Top} {
		if p != nil {
			out = append(out, *p)
		}
	}
	out = append(out, a.OneOf...)
	if a.MatchScore != nil {
		out = append(out, a.MatchScore.Text, a.MatchScore.Model)
	}
	return out
}

// caseVars are the variables visible to c: the suite's, overridden by the
// case's.
func (s *Suite) caseVars(c *Case) map[string]any {
	out := map[string]any{}
	for k, v := range s.Vars {
		out[k] = v
	}
	for k, v := range c.Vars {
		out[k] = v
	}
	return out
}

// varValues is a variable's values: a scalar is one value, a list several.
func varValues(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, errors.New("no value")
	case []any:
		if len(x) == 0 {
			return nil, errors.New("empty list")
		}
		out := make([]string, len(x))
		for i, e := range x {
			switch e.(type) {
			case []any, map[string]any:
				return nil, fmt.Errorf("item %d is not a scalar", i+1)
			}
			out[i] = fmt.Sprint(e)
		}
		return out, nil
	case map[string]any:
		return nil, errors.New("a variable is a string or a list of strings, not a map")
	default:
		return []string{fmt.Sprint(x)}, nil
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
