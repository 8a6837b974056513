package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runArgs(t *testing.T, envVars map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var o, e bytes.Buffer
	en := &env{stdout: &o, stderr: &e, stdin: strings.NewReader(""), getenv: func(k string) (string, bool) {
		v, ok := envVars[k]
		return v, ok
	}}
	code := run(en, args)
	return o.String(), e.String(), code
}

func TestParseFlagsAnywhere(t *testing.T) {
	tests := []struct {
		args      []string
		posFlag   string
		wantPos   []string
		wantJSON  bool
		wantN     int
		wantTexts []string
		wantErr   bool
	}{
		{args: []string{"img.jpg", "--json", "--n", "3"}, wantPos: []string{"img.jpg"}, wantJSON: true, wantN: 3},
		{args: []string{"--n=4", "img.jpg", "q", "--json"}, wantPos: []string{"img.jpg", "q"}, wantJSON: true, wantN: 4},
		{args: []string{"--json", "--", "-img.jpg", "--n"}, wantPos: []string{"-img.jpg", "--n"}, wantJSON: true},
		{args: []string{"--text", "a", "b", "--text", "c"}, posFlag: "text", wantTexts: []string{"a", "b", "c"}},
		{args: []string{"--n"}, wantErr: true},
		{args: []string{"--bogus"}, wantErr: true},
		{args: []string{"--n", "x"}, wantErr: true},
	}
	for _, tc := range tests {
		fs := newFlags("t")
		j := fs.Bool("json", false, "")
		n := fs.Int("n", 0, "")
		var texts stringList
		fs.Var(&texts, "text", "")
		pos, err := parse(fs, tc.args, tc.posFlag)
		if (err != nil) != tc.wantErr {
			t.Fatalf("%q: err %v", tc.args, err)
		}
		if err != nil {
			continue
		}
		if strings.Join(pos, "|") != strings.Join(tc.wantPos, "|") || *j != tc.wantJSON || *n != tc.wantN ||
			strings.Join(texts, "|") != strings.Join(tc.wantTexts, "|") {
			t.Errorf("%q: pos %q json %v n %d texts %q", tc.args, pos, *j, *n, texts)
		}
	}
	if _, err := parse(newFlags("t"), []string{"--help"}, ""); err != flag.ErrHelp {
		t.Errorf("--help: %v", err)
	}
}

func TestExitCodesAndHelp(t *testing.T) {
	img := filepath.Join(e2eRoot, "blip-caption", "cat_chelsea.jpg")
	dir := filepath.Join(e2eRoot, "blip-caption")
	tests := []struct {
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{nil, exitUsage, "", "Commands:"},
		{[]string{"--help"}, exitOK, "Commands:", ""},
		{[]string{"help", "caption"}, exitOK, "Examples:", ""},
		{[]string{"nope"}, exitUsage, "", "unknown command"},
		{[]string{"caption", "--help"}, exitOK, "glimpse caption", ""},
		{[]string{"serve", "-h"}, exitOK, "-max-queue int", ""},
		{[]string{"bench", "--help"}, exitOK, "bench kernels", ""},
		{[]string{"bench", "serve", "--clients", "0"}, exitUsage, "", "--clients"},
		{[]string{"caption"}, exitUsage, "", "want one IMAGE"},
		{[]string{"caption", "--num-beams"}, exitUsage, "", "needs a value"},
		{[]string{"ask", img}, exitUsage, "", "IMAGE QUESTION"},
		{[]string{"embed", "--model", dir}, exitUsage, "", "nothing to embed"},
		{[]string{"tokenize", "hello"}, exitUsage, "", "--model DIR is required"},
		{[]string{"generate", "--task", "dance", img}, exitUsage, "", "want caption or answer"},
		{[]string{"serve", "--max-queue", "-1"}, exitUsage, "", "--max-queue"},
		{[]string{"serve", "--model", "a=/x", "--model", "a=/y"}, exitUsage, "", "given twice"},
		{[]string{"serve", "--addr", "nocolon"}, exitUsage, "", "--addr"},
		{[]string{"caption", "--model", "./missing-folder", img}, exitFailed, "", "no such checkpoint folder"},
		{[]string{"caption", "--model", filepath.Join(e2eRoot, "clip"), img}, exitFailed, "", "cannot caption"},
		{[]string{"caption", "--model", dir, "--num-beams", "99", img}, exitFailed, "", "options.num_beams"},
		{[]string{"caption", "--model", dir, "main.go"}, exitFailed, "", "image"},
		{[]string{"caption", img, "--model", dir, "--max-new-tokens", "3"}, exitOK, "space space space", ""},
		{[]string{"tokenize", "--model", dir, "--json", "a", "photograph"}, exitOK, `"ids":[`, ""},
		{[]string{"finetune", "--help"}, exitOK, "JSONL", ""},
		{[]string{"finetune", "--base", dir}, exitUsage, "", "usage: glimpse finetune"},
		{[]string{"finetune", "--base", "./missing-folder", "--data", "none.jsonl", "--out", t.TempDir()}, exitFailed, "", "missing-folder"},
	}
	for _, tc := range tests {
		out, errOut, code := runArgs(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.inStdout) || !strings.Contains(errOut, tc.inStderr) {
			t.Errorf("glimpse %q: exit %d (want %d)\nstdout: %s\nstderr: %s", tc.args, code, tc.code, out, errOut)
		}
	}
}

func TestServeEnvAndConfigErrors(t *testing.T) {
	_, errOut, code := runArgs(t, map[string]string{"GLIMPSE_MAX_CONCURRENT": "zero"}, "serve")
	if code != exitUsage || !strings.Contains(errOut, "--max-concurrent") || !strings.Contains(errOut, "GLIMPSE_MAX_CONCURRENT") {
		t.Fatalf("bad env: exit %d: %s", code, errOut)
	}
	cfg := filepath.Join(t.TempDir(), "glimpse.yaml")
	if err := os.WriteFile(cfg, []byte("max_queue: 3\nbogus_key: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runArgs(t, nil, "serve", "--config", cfg)
	if code != exitUsage || !strings.Contains(errOut, "--config") {
		t.Fatalf("bad config file: exit %d: %s", code, errOut)
	}
}

func TestModelsInProcess(t *testing.T) {
	out, errOut, code := runArgs(t, nil, "models", "--json", "--model", "cap="+filepath.Join(e2eRoot, "blip-caption"), "--model", "bad="+t.TempDir())
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r struct {
		Models []struct {
			Name, Family, State, Error string
		} `json:"models"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Models) != 2 || r.Models[0].Family != "blip" || r.Models[0].State != "MODEL_STATE_SERVING" ||
		r.Models[1].State != "MODEL_STATE_NOT_SERVING" || !strings.Contains(r.Models[1].Error, "config.json") {
		t.Fatalf("models %s", out)
	}
}
