package main

import (
	"fmt"

	"github.com/glimpse-vlm/glimpse/text/tokenizer"
)

func init() {
	register(&verb{name: "tokenize", summary: "show how a checkpoint's tokenizer splits a text", run: runTokenize, usage: `Usage: glimpse tokenize --model DIR [--no-special] [--json] TEXT...

Tokenizes TEXT (words joined with spaces) with the tokenizer files in DIR
(tokenizer.json, or vocab.txt / vocab.json + merges.txt, with their config
files), adding special tokens as Hugging Face's tokenizer(text) does unless
--no-special. --json prints {"ids": [...], "tokens": [...]}.

Examples:
  glimpse tokenize --model ./blip-image-captioning-base "a picture of"
  glimpse tokenize --model ./clip-vit-base-patch32 --no-special --json "a photo of a cat"
`})
}

func runTokenize(e *env, args []string) error {
	fs := newFlags("tokenize")
	dir := fs.String("model", "", "checkpoint or tokenizer folder (required)")
	noSpecial := fs.Bool("no-special", false, "do not add special tokens")
	asJSON := fs.Bool("json", false, "machine-readable JSON output")
	pos, err := parse(fs, args, "")
	if err != nil {
		return err
	}
	if *dir == "" {
		return usagef("--model DIR is required")
	}
	if len(pos) == 0 {
		return usagef("want TEXT")
	}
	text := pos[0]
	for _, p := range pos[1:] {
		text += " " + p
	}
	tok, err := tokenizer.Load(*dir)
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := tokenizer.TokenizeJSON(tok, text, !*noSpecial)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	for _, id := range tok.Encode(text, !*noSpecial) {
		s, _ := tok.IDToToken(id)
		fmt.Fprintf(e.stdout, "%d\t%s\n", id, s)
	}
	return nil
}
