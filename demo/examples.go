package demo

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/glimpse-vlm/glimpse/fusion"
)

// Examples runs the models on held-out scenes 0…n−1, writes each scene as
// outDir/heldout-i.png and returns the Markdown of demo/README.md's
// examples section: the true caption, the generated caption, the answers
// to the scene's first four questions and the ITM probabilities of the
// true caption and two of Eval's negatives. Image links are relative to
// the README (link + "/heldout-i.png"). Models that are nil are skipped.
func Examples(ctx context.Context, m Models, n int, outDir, link string) (string, error) {
	if n <= 0 {
		return "", fmt.Errorf("demo: examples needs at least one scene, got %d", n)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	var b strings.Builder
	for i := 0; i < n; i++ {
		s := HeldOut(i)
		name := fmt.Sprintf("heldout-%d.png", i)
		if err := WritePNG(s.Seed, filepath.Join(outDir, name)); err != nil {
			return "", err
		}
		img := s.Render()
		fmt.Fprintf(&b, "#### ![](%s/%s) held-out scene %d (seed %d)\n\n", link, name, i, s.Seed)
		fmt.Fprintf(&b, "- truth: %q\n", s.Caption())
		if m.Caption != nil {
			c, ok := m.Caption.(fusion.Captioner)
			if !ok {
				return "", fmt.Errorf("demo: the caption model cannot caption")
			}
			st, err := m.Caption.EncodeImage(ctx, img)
			if err != nil {
				return "", err
			}
			g, err := c.Caption(ctx, st, "", fusion.GenerateOptions{}, nil)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "- caption: %q\n", g.Text)
		}
		if m.VQA != nil {
			a, ok := m.VQA.(fusion.Answerer)
			if !ok {
				return "", fmt.Errorf("demo: the VQA model cannot answer")
			}
			st, err := m.VQA.EncodeImage(ctx, img)
			if err != nil {
				return "", err
			}
			qas := s.QAs()
			for _, qa := range qas[:min(4, len(qas))] {
				g, err := a.Answer(ctx, st, qa.Question, fusion.GenerateOptions{}, nil)
				if err != nil {
					return "", err
				}
				fmt.Fprintf(&b, "- Q: %s → %q (truth %q)\n", qa.Question, g.Text, qa.Answer)
			}
		}
		if m.Retrieval != nil {
			mt, ok := m.Retrieval.(fusion.Matcher)
			if !ok {
				return "", fmt.Errorf("demo: the retrieval model cannot match")
			}
			st, err := m.Retrieval.EncodeImage(ctx, img)
			if err != nil {
				return "", err
			}
			cands := append([]string{s.Caption()}, s.Negatives(9, 12345)[:2]...)
			scores, err := mt.Match(ctx, st, cands)
			if err != nil {
				return "", err
			}
			for j, c := range cands {
				if scores[j].ITMProbability == nil {
					return "", fmt.Errorf("demo: the retrieval model gives no ITM probability")
				}
				fmt.Fprintf(&b, "- match %q: ITM %.3f\n", c, *scores[j].ITMProbability)
			}
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

// RunExamples is the `glimpse demo examples` command: it runs the demo
// models (--models DIR; default the shipped ones) on the first --n
// held-out scenes, writes their pictures to --out and prints the Markdown
// of demo/README.md's examples section. It returns the exit code.
func RunExamples(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo examples", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("models", "", "folder with caption/, vqa/ and retrieval/ model folders (default: the shipped demo models)")
	out := fs.String("out", "", "folder for the pictures (heldout-i.png)")
	link := fs.String("link", "examples", "path of that folder as the Markdown links give it")
	n := fs.Int("n", 6, "held-out scenes")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 0 || *n <= 0 {
		fmt.Fprintln(stderr, "usage: glimpse demo examples --out DIR [--models DIR] [--n N] [--link PATH]")
		return 2
	}
	ms, closeAll, code := loadForCommand("demo examples", *dir, stderr)
	if closeAll == nil {
		return code
	}
	defer closeAll()
	md, err := Examples(context.Background(), ms, *n, *out, *link)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprint(stdout, md)
	return 0
}
