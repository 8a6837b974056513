// Command glimpse serves vision-language models over gRPC and runs their
// tasks from the command line.
//
//	glimpse serve                                  # the built-in default models on 127.0.0.1:50051
//	glimpse caption photo.jpg                      # ask that server for a caption
//	glimpse caption --model DIR photo.jpg          # run the checkpoint in-process, no server
//	glimpse ask --json photo.jpg "what is it?"
//	glimpse match photo.jpg "a cat" "a dog"
//	glimpse embed --image photo.jpg --text "a cat"
//	glimpse generate photo.jpg "a picture of"      # streams as it decodes
//	glimpse tokenize --model DIR "some text"
//	glimpse bench kernels
//
// Exit codes: 0 success, 1 the request failed, 2 bad usage.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	programName = "glimpse"
)

// usageError is bad usage (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// env is what a verb runs with (the process's streams and environment, or
// a test's).
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	getenv         func(string) (string, bool)
}

type verb struct {
	name    string
	summary string
	usage   string // full help: synopsis, description, examples
	run     func(e *env, args []string) error
}

var verbs = map[string]*verb{}

func register(v *verb) { verbs[v.name] = v }

func main() {
	e := &env{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, getenv: os.LookupEnv}
	os.Exit(run(e, os.Args[1:]))
}

const mainUsage = `glimpse — vision-language models (BLIP, ViT-GPT2, CLIP) served over gRPC, in pure Go.

Usage:
  glimpse <command> [flags] [arguments]

Commands:
%s
Run "glimpse <command> --help" for a command's flags and examples.

Task commands talk to a server with --addr HOST:PORT (default 127.0.0.1:50051,
or $GLIMPSE_ADDR), or run a checkpoint folder in-process with --model DIR.
Exit codes: 0 success, 1 the request failed, 2 bad usage.

Examples:
  glimpse serve                                   # serve the built-in default models
  glimpse caption testdata/images/cat_chelsea.jpg # caption with that server
  glimpse caption --model ./blip-base --json cat.jpg
`

func mainHelp() string {
	var names []string
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "  %-10s %s\n", n, verbs[n].summary)
	}
	return fmt.Sprintf(mainUsage, b.String())
}

// run executes one command line and returns the exit code.
func run(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, mainHelp())
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if v, ok := verbs[args[1]]; ok {
				fmt.Fprint(e.stdout, v.usage)
				return exitOK
			}
		}
		fmt.Fprint(e.stdout, mainHelp())
		return exitOK
	case "-version", "--version", "version":
		fmt.Fprintln(e.stdout, "glimpse (glimpse.v1 API)")
		return exitOK
	}
	v, ok := verbs[name]
	if !ok {
		fmt.Fprintf(e.stderr, "glimpse: unknown command %q\n\n%s", name, mainHelp())
		return exitUsage
	}
	err := v.run(e, args[1:])
	var ue *usageError
	var ec exitCode
	switch {
	case errors.As(err, &ec):
		return int(ec)
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(e.stdout, v.usage)
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "glimpse %s: %s\nRun \"glimpse %s --help\" for usage.\n", name, ue.msg, name)
		return exitUsage
	default:
		fmt.Fprintf(e.stderr, "glimpse %s: %s\n", name, describe(err))
		return exitFailed
	}
}

// newFlags makes a verb's flag set (errors are returned, not printed).
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses args allowing flags before and after positional arguments
// ("--" ends the flags). If positionalFlag is set, positional arguments
// are given to that flag instead, in command-line order.
func parse(fs *flag.FlagSet, args []string, positionalFlag string) ([]string, error) {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			if positionalFlag != "" {
				flags = append(flags, "--"+positionalFlag+"="+a)
			} else {
				pos = append(pos, a)
			}
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			if name == "h" || name == "help" {
				return nil, flag.ErrHelp
			}
			return nil, usagef("unknown flag %s", a)
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			continue
		}
		if i+1 >= len(args) {
			return nil, usagef("flag %s needs a value", a)
		}
		i++
		flags = append(flags, args[i])
	}
	if err := fs.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usagef("%v", err)
	}
	return pos, nil
}

func errHelp() error { return flag.ErrHelp }
