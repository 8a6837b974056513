package train

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/glimpse-vlm/glimpse/fusion/blip"
	"github.com/glimpse-vlm/glimpse/vision"
)

// Record is one fine-tuning example (a JSONL line): an image path
// (relative paths are relative to the JSONL file) with a caption, or with
// a question and its answer.
type Record struct {
	Image    string `json:"image"`
	Caption  string `json:"caption,omitempty"`
	Question string `json:"question,omitempty"`
	Answer   string `json:"answer,omitempty"`
}

// ReadRecords reads a JSONL file of Records.
func ReadRecords(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("train: %s line %d: %w (want {\"image\": PATH, \"caption\": TEXT} or {\"image\": PATH, \"question\": TEXT, \"answer\": TEXT})", path, line, err)
		}
		if r.Image == "" || (r.Caption == "" && (r.Question == "" || r.Answer == "")) {
			return nil, fmt.Errorf("train: %s line %d: a record needs \"image\" and either \"caption\" or both \"question\" and \"answer\"", path, line)
		}
		if !filepath.IsAbs(r.Image) {
			r.Image = filepath.Join(filepath.Dir(path), r.Image)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("train: %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("train: %s has no records", path)
	}
	return out, nil
}

// FinetuneOptions control Finetune.
type FinetuneOptions struct {
	Base, Data, Out string
	Steps, Batch    int
	LR              float64
	Seed            uint64
	FreezeVision    bool
	Half            bool
	Log             io.Writer
	LogEvery        int
	// MaxMemory, if > 0, is a memory budget in bytes: Finetune refuses,
	// before loading the model, when EstimateMemory exceeds it.
	MaxMemory int64
}

// Finetune loads the BLIP folder o.Base, trains it on o.Data's records that
// fit its architecture (captions for BlipForConditionalGeneration and
// BlipForImageTextRetrieval — whose negatives are other captions of the
// data —, question–answer pairs for BlipForQuestionAnswering) and writes
// the result to o.Out. It returns the per-step losses.
func Finetune(o FinetuneOptions) ([]float64, error) {
	if o.Steps <= 0 || o.Batch <= 0 || o.LR <= 0 {
		return nil, fmt.Errorf("train: finetune needs positive steps, batch and learning rate (got %d, %d, %g)", o.Steps, o.Batch, o.LR)
	}
	bc, err := readConfig(o.Base)
	if err != nil {
		return nil, err
	}
	recs, err := ReadRecords(o.Data)
	if err != nil {
		return nil, err
	}
	if err := checkMemory(o, bc, len(recs)); err != nil {
		return nil, err
	}
	m, err := Load(o.Base)
	if err != nil {
		return nil, err
	}
	var use []Record
	var captions []string
	for _, r := range recs {
		if m.Arch == ArchVQA && r.Question != "" {
			use = append(use, r)
		}
		if m.Arch != ArchVQA && r.Caption != "" {
			use = append(use, r)
			captions = append(captions, r.Caption)
		}
	}
	if len(use) == 0 {
		kind := "caption"
		if m.Arch == ArchVQA {
			kind = "question/answer"
		}
		return nil, fmt.Errorf("train: %s has no %s records for a %s", o.Data, kind, m.Arch)
	}
	pixels := make([][]float32, len(use))
	for i, r := range use {
		data, err := os.ReadFile(r.Image)
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		img, err := vision.Decode(data, vision.DefaultLimits())
		if err != nil {
			return nil, fmt.Errorf("train: %s: %w", r.Image, err)
		}
		pixels[i] = m.Pixels(img)
	}
	m.FreezeVision(o.FreezeVision)
	r := rand.New(rand.NewPCG(o.Seed, 0x6a09e667f3bcc909))
	opt := NewAdamW(o.LR, 0.01, max(1, o.Steps/10), o.Steps)
	var losses []float64
	start := time.Now()
	for step := 0; step < o.Steps; step++ {
		m.Params.ZeroGrad()
		var l float64
		for b := 0; b < o.Batch; b++ {
			i := r.IntN(len(use))
			rec, w := use[i], 1/float32(o.Batch)
			var li float64
			switch m.Arch {
			case ArchCaption:
				li, err = m.CaptionLoss(pixels[i], rec.Caption, w)
			case ArchVQA:
				li, err = m.VQALoss(pixels[i], rec.Question, rec.Answer, w)
			default:
				var negs []string
				for tries := 0; len(negs) < 3 && tries < 20; tries++ {
					if c := captions[r.IntN(len(captions))]; c != rec.Caption {
						negs = append(negs, c)
					}
				}
				if len(negs) == 0 {
					return nil, fmt.Errorf("train: retrieval fine-tuning needs at least two different captions in %s", o.Data)
				}
				li, err = m.RetrievalLoss(pixels[i], rec.Caption, negs, w, 0.07)
			}
			if err != nil {
				return losses, err
			}
			l += li
		}
		l /= float64(o.Batch)
		if err := m.Params.checkFinite(); err != nil {
			return losses, err
		}
		m.Params.ClipGradNorm(1)
		opt.Step(m.Params)
		losses = append(losses, l)
		if o.Log != nil && o.LogEvery > 0 && (step%o.LogEvery == 0 || step == o.Steps-1) {
			fmt.Fprintf(o.Log, "finetune step %d/%d loss %.4f elapsed %s\n", step+1, o.Steps, l, time.Since(start).Round(time.Second))
		}
	}
	if err := m.Save(o.Out, o.Half); err != nil {
		return losses, err
	}
	return losses, nil
}

// readConfig reads a BLIP folder's config.json.
func readConfig(dir string) (blip.Config, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return blip.Config{}, fmt.Errorf("train: %w (a BLIP folder needs config.json)", err)
	}
	bc, err := blip.ParseConfig(raw)
	if err != nil {
		return bc, fmt.Errorf("train: %s: %w", dir, err)
	}
	if len(bc.Architectures) == 0 {
		return bc, fmt.Errorf("train: %s/config.json has no architectures", dir)
	}
	return bc, nil
}

// checkMemory estimates the run's memory from the base's config (nothing
// of the model is loaded), logs it, and refuses a run over o.MaxMemory.
func checkMemory(o FinetuneOptions, bc blip.Config, images int) error {
	est, err := EstimateMemory(bc.Architectures[0], configOf(bc), o.FreezeVision, images)
	if err != nil {
		return fmt.Errorf("train: %s: %w", o.Base, err)
	}
	if o.Log != nil {
		fmt.Fprintf(o.Log, "finetune %s: memory estimate %s\n", bc.Architectures[0], est)
	}
	if o.MaxMemory > 0 && est.Total() > o.MaxMemory {
		hint := "--freeze-vision saves the vision encoder's AdamW moments; otherwise use a machine with more memory"
		if o.FreezeVision {
			hint = "use a machine with more memory"
		}
		return fmt.Errorf("train: fine-tuning %s needs about %s, over the --max-memory budget of %s (%s)",
			o.Base, est, FormatBytes(o.MaxMemory), hint)
	}
	return nil
}

// RunFinetune is the `glimpse finetune` command: --base DIR --data
// FILE.jsonl --out DIR. It returns the exit code (0 ok, 2 usage, 1
// failure).
func RunFinetune(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("finetune", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o FinetuneOptions
	fs.StringVar(&o.Base, "base", "", "base BLIP checkpoint folder")
	fs.StringVar(&o.Data, "data", "", "JSONL records: {\"image\", \"caption\"} or {\"image\", \"question\", \"answer\"}")
	fs.StringVar(&o.Out, "out", "", "output checkpoint folder")
	fs.IntVar(&o.Steps, "steps", 200, "optimiser steps")
	fs.IntVar(&o.Batch, "batch", 8, "examples per step")
	fs.Float64Var(&o.LR, "lr", 2e-4, "peak learning rate")
	fs.Uint64Var(&o.Seed, "seed", 1, "sampling seed")
	fs.BoolVar(&o.FreezeVision, "freeze-vision", false, "do not update the vision encoder")
	fs.BoolVar(&o.Half, "f16", false, "store F16 weights")
	fs.IntVar(&o.LogEvery, "log-every", 10, "log the loss every N steps")
	maxMem := fs.String("max-memory", "", "refuse to start when the estimated memory exceeds this (e.g. 8GiB, 6G); empty: no limit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *maxMem != "" {
		n, err := ParseBytes(*maxMem)
		if err != nil {
			fmt.Fprintf(stderr, "finetune: --max-memory: %v\n", err)
			return 2
		}
		o.MaxMemory = n
	}
	if o.Base == "" || o.Data == "" || o.Out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: glimpse finetune --base DIR --data FILE.jsonl --out DIR [--steps N] [--batch N] [--lr X] [--freeze-vision] [--f16] [--max-memory SIZE]")
		return 2
	}
	o.Log = stdout
	if _, err := Finetune(o); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s\n", o.Out)
	return 0
}
