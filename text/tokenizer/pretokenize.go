package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// The pre-tokenisation patterns run on the Python `regex` module, where \s is the
// White_Space property, \p{L} any letter and \p{N} any number.

func isRegexSpace(r rune) bool { return unicode.IsSpace(r) }

func isL(r rune) bool {
	if r < 0x80 {
		return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
	}
	return unicode.IsLetter(r)
}

func isN(r rune) bool {
	if r < 0x80 {
		return r >= '0' && r <= '9'
	}
	return unicode.IsNumber(r)
}

// isOther is [^\s\p{L}\p{N}].
func isOther(r rune) bool { return !isRegexSpace(r) && !isL(r) && !isN(r) }

// contraction returns the length of the contraction ('s 't 're 've 'm 'll 'd) at the
// start of s, or 0. With fold, 's also matches a long s (U+017F), as the
// case-insensitive CLIP pattern does.
func contraction(s string, fold bool) int {
	if len(s) < 2 || s[0] != '\'' {
		return 0
	}
	// c returns the character at byte i, folded to lower-case ASCII when fold is set,
	// and its length; U+017F (long s) folds to 's'.
	c := func(i int) (byte, int) {
		if i >= len(s) {
			return 0, 0
		}
		b := s[i]
		if !fold {
			return b, 1
		}
		if b >= 'A' && b <= 'Z' {
			return b + ('a' - 'A'), 1
		}
		if r, n := utf8.DecodeRuneInString(s[i:]); r == 0x17F {
			return 's', n
		}
		return b, 1
	}
	a, n1 := c(1)
	switch a {
	case 's', 't', 'm', 'd':
		return 1 + n1
	case 'r', 'v':
		if b, n2 := c(1 + n1); b == 'e' {
			return 1 + n1 + n2
		}
	case 'l':
		if b, n2 := c(1 + n1); b == 'l' {
			return 1 + n1 + n2
		}
	}
	return 0
}

// runWhile returns the end of the run of characters of s from i satisfying f.
func runWhile(s string, i int, f func(rune) bool) int {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !f(r) {
			break
		}
		i += n
	}
	return i
}

// gpt2Split implements GPT-2's pattern
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with the semantics of a leftmost-first regex engine (findall).
func gpt2Split(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		j := gpt2Match(s, i)
		out = append(out, s[i:j])
		i = j
	}
	return out
}

func gpt2Match(s string, i int) int {
	if n := contraction(s[i:], false); n > 0 {
		return i + n
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	// " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+"
	k, c := i, r
	if r == ' ' && i+n < len(s) {
		k = i + n
		c, _ = utf8.DecodeRuneInString(s[k:])
	}
	if r != ' ' || k > i {
		switch {
		case isL(c):
			return runWhile(s, k, isL)
		case isN(c):
			return runWhile(s, k, isN)
		case isOther(c):
			return runWhile(s, k, isOther)
		}
	}
	// Here s[i] is white space (the alternatives above cover everything else).
	end := runWhile(s, i, isRegexSpace)
	if end == len(s) {
		return end // \s+(?!\S) at the end of the text
	}
	// \s+(?!\S): give back the last white-space character if more than one.
	_, last := utf8.DecodeLastRuneInString(s[i:end])
	if end-last > i {
		return end - last
	}
	return i + n // \s+ of one character
}

// clipSplit implements CLIP's pattern (findall, re.IGNORECASE)
// <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// White space matches nothing and is skipped.
func clipSplit(s string, fold bool) []string {
	var out []string
	for i := 0; i < len(s); {
		if n := literalFold(s[i:], "<|startoftext|>", fold); n > 0 {
			out = append(out, s[i:i+n])
			i += n
			continue
		}
		if n := literalFold(s[i:], "<|endoftext|>", fold); n > 0 {
			out = append(out, s[i:i+n])
			i += n
			continue
		}
		if n := contraction(s[i:], fold); n > 0 {
			out = append(out, s[i:i+n])
			i += n
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		var j int
		switch {
		case isL(r):
			j = runWhile(s, i, isL)
		case isN(r):
			j = i + n
		case isOther(r):
			j = runWhile(s, i, isOther)
		default:
			i += n
			continue
		}
		out = append(out, s[i:j])
		i = j
	}
	return out
}

// literalFold matches lit (lower-case ASCII) at the start of s, case-insensitively
// when fold is set (simple case folding: also K->k is irrelevant here, but
// U+017F long s folds to 's' and upper-case ASCII to lower-case).
func literalFold(s, lit string, fold bool) int {
	i := 0
	for k := 0; k < len(lit); k++ {
		if i >= len(s) {
			return 0
		}
		c := s[i]
		if c == lit[k] {
			i++
			continue
		}
		if !fold {
			return 0
		}
		if c >= 'A' && c <= 'Z' && c+('a'-'A') == lit[k] {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if lit[k] == 's' && r == 0x17F {
			i += n
			continue
		}
		if lit[k] == 'k' && r == 0x212A {
			i += n
			continue
		}
		return 0
	}
	return i
}
