package tokenizer

import (
	"strings"
	"testing"
	"unicode"
)

// TestUnicodeVersion guards the Unicode 14 emulation: unicode15Only lists what Go's
// tables add over CPython 3.11's; a Go release with newer tables needs it regenerated.
func TestUnicodeVersion(t *testing.T) {
	if unicode.Version != goUnicodeVersionForTables {
		t.Fatalf("Go's Unicode tables are %s; unicode15Only was derived for %s: regenerate it (see unicode.go)", unicode.Version, goUnicodeVersionForTables)
	}
	tests := []struct {
		r       rune
		control bool
	}{
		{'a', false}, {'\t', false}, {0x7f, true}, {0x200d, true}, {0xad, true},
		{0x1FA77, true},  // pink heart: Unicode 15, unassigned for CPython 3.11
		{0x1F355, false}, // pizza: Unicode 6
		{0x31350, true},  // CJK extension H: Unicode 15
		{0xE000, true},   // private use
		{0x10FFFF, true}, // unassigned
	}
	for _, tc := range tests {
		if got := pyIsControl(tc.r); got != tc.control {
			t.Errorf("pyIsControl(%U) = %v, want %v", tc.r, got, tc.control)
		}
	}
}

// TestPyDecodeUTF8 compares with Python's bytes.decode("utf-8", "replace"/"ignore").
func TestPyDecodeUTF8(t *testing.T) {
	tests := []struct{ in, replace, ignore string }{
		{"\xe2\x82", "\uFFFD", ""},
		{"\xe2\x82A", "\uFFFDA", "A"},
		{"\xff\xfe", "\uFFFD\uFFFD", ""},
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD", ""},
		{"\xf0\x9f\x8d", "\uFFFD", ""},
		{"\xf0\x9f\x8d\x95", "🍕", "🍕"},
		{"a\xc3", "a\uFFFD", "a"},
		{"\xc0\xaf", "\uFFFD\uFFFD", ""},
		{"\xf4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD", ""},
		{"\xe0\x80\x80", "\uFFFD\uFFFD\uFFFD", ""},
		{"\xf0\x80", "\uFFFD\uFFFD", ""},
	}
	for _, tc := range tests {
		var r, i strings.Builder
		pyDecodeUTF8(&r, []byte(tc.in), false, true)
		pyDecodeUTF8(&i, []byte(tc.in), true, true)
		if r.String() != tc.replace || i.String() != tc.ignore {
			t.Errorf("decode(%q) = %q / %q, want %q / %q", tc.in, r.String(), i.String(), tc.replace, tc.ignore)
		}
	}
	var b strings.Builder
	if n := pyDecodeUTF8(&b, []byte("a\xf0\x9f\x8d"), false, false); n != 3 || b.String() != "a" {
		t.Errorf("incomplete tail: pending %d, text %q; want 3, \"a\"", n, b.String())
	}
}

// TestPyLower compares with Python's str.lower (full mappings, Final_Sigma).
func TestPyLower(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ΟΔΟΣ ΣΑΣ Σ aΣ. İstanbul", "οδος σας σ aς. i\u0307stanbul"},
		{"ΟΔΟΣ", "οδος"}, {"Σ", "σ"}, {"AΣ\u0301", "aς\u0301"}, {"AΣ\u0301B", "aσ\u0301b"}, {"A'Σ", "a'ς"},
		{"HELLO", "hello"},
	}
	for _, tc := range tests {
		if got := pyLower(tc.in); got != tc.want {
			t.Errorf("pyLower(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
