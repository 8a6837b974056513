package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// The reference tokenizers run on CPython 3.11, whose unicodedata module implements
// Unicode 14.0.0, while Go's unicode package implements 15.0.0 (checked by
// TestUnicodeVersion). The only differences between the two for the properties used
// here (general category, lower-case mapping, canonical decomposition) are the 4489
// code points first assigned in Unicode 15.0: CPython 3.11 sees them as unassigned
// (category Cn, hence "control" for BERT's clean-up, which deletes them). The table was
// derived by dumping every code point's category, lower-case mapping and NFD with both
// runtimes and diffing the dumps (the lower-case diff is U+0130 only, handled in
// pyLowerRune; NFD showed no difference).
var unicode15Only = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x0CF3, 0x0CF3, 1}, {0x0ECE, 0x0ECE, 1},
	},
	R32: []unicode.Range32{
		{0x10EFD, 0x10EFF, 1}, {0x1123F, 0x11241, 1}, {0x11B00, 0x11B09, 1}, {0x11F00, 0x11F10, 1},
		{0x11F12, 0x11F3A, 1}, {0x11F3E, 0x11F59, 1}, {0x1342F, 0x1342F, 1}, {0x13439, 0x13455, 1},
		{0x1B132, 0x1B132, 1}, {0x1B155, 0x1B155, 1}, {0x1D2C0, 0x1D2D3, 1}, {0x1DF25, 0x1DF2A, 1},
		{0x1E030, 0x1E06D, 1}, {0x1E08F, 0x1E08F, 1}, {0x1E4D0, 0x1E4F9, 1}, {0x1F6DC, 0x1F6DC, 1},
		{0x1F774, 0x1F776, 1}, {0x1F77B, 0x1F77F, 1}, {0x1F7D9, 0x1F7D9, 1}, {0x1FA75, 0x1FA77, 1},
		{0x1FA87, 0x1FA88, 1}, {0x1FAAD, 0x1FAAF, 1}, {0x1FABB, 0x1FABD, 1}, {0x1FABF, 0x1FABF, 1},
		{0x1FACE, 0x1FACF, 1}, {0x1FADA, 0x1FADB, 1}, {0x1FAE8, 0x1FAE8, 1}, {0x1FAF7, 0x1FAF8, 1},
		{0x2B739, 0x2B739, 1}, {0x31350, 0x323AF, 1},
	},
}

// goUnicodeVersionForTables is the Go Unicode version the unicode15Only table was
// derived against.
const goUnicodeVersionForTables = "15.0.0"

// py14Assigned reports whether r is assigned in Unicode 14 (CPython 3.11's view).
func py14Assigned(r rune) bool {
	if r < 0x80 {
		return true
	}
	if unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf, unicode.Co) {
		return r < 0x0CF3 || !unicode.Is(unicode15Only, r)
	}
	return false
}

// pyIsControl is BERT's _is_control: category C* except \t \n \r.
func pyIsControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	if r < 0x80 {
		return r < 0x20 || r == 0x7f
	}
	if unicode.IsLetter(r) && (r < 0x0CF3 || !unicode.Is(unicode15Only, r)) {
		return false
	}
	if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co) {
		return true
	}
	return !py14Assigned(r)
}

// pyIsWhitespaceBert is BERT's _is_whitespace: space, \t, \n, \r or category Zs.
func pyIsWhitespaceBert(r rune) bool {
	if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
		return true
	}
	return r >= 0x80 && unicode.Is(unicode.Zs, r)
}

// pyIsPunct is BERT's _is_punctuation: ASCII non-alphanumeric printable or category P*.
func pyIsPunct(r rune) bool {
	if (r >= 33 && r <= 47) || (r >= 58 && r <= 64) || (r >= 91 && r <= 96) || (r >= 123 && r <= 126) {
		return true
	}
	return r >= 0x80 && unicode.IsPunct(r) && py14Assigned(r)
}

// pyIsSpace is Python's str.isspace for one character (used by str.split/strip).
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// isChineseChar is BERT's _is_chinese_char (CJK Unified Ideographs blocks).
func isChineseChar(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) || (r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) || (r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) || (r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) || (r >= 0x2F800 && r <= 0x2FA1F)
}

// pyLowerRune appends Python's full lower-case mapping of one character taken alone.
func pyLowerRune(b *strings.Builder, r rune) {
	if r < 0x80 {
		if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		b.WriteByte(byte(r))
		return
	}
	if r == 0x130 { // LATIN CAPITAL LETTER I WITH DOT ABOVE -> i + COMBINING DOT ABOVE
		b.WriteString("i\u0307")
		return
	}
	if !py14Assigned(r) {
		b.WriteRune(r)
		return
	}
	b.WriteRune(unicode.ToLower(r))
}

// isCased and isCaseIgnorable approximate the Unicode properties Python's
// Final_Sigma rule consults.
func isCased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

func isCaseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', '^', '`', 0xB7, 0x387, 0x55F, 0x5F4, 0x2018, 0x2019, 0x2024, 0x2027, 0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// pyLower is Python's str.lower on a whole string: full mappings plus the
// Final_Sigma rule for U+03A3.
func pyLower(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range rs {
		if r == 0x3A3 && finalSigma(rs, i) {
			b.WriteRune(0x3C2)
			continue
		}
		pyLowerRune(&b, r)
	}
	return b.String()
}

func finalSigma(rs []rune, i int) bool {
	j := i - 1
	for j >= 0 && isCaseIgnorable(rs[j]) {
		j--
	}
	if j < 0 || !isCased(rs[j]) {
		return false
	}
	k := i + 1
	for k < len(rs) && isCaseIgnorable(rs[k]) {
		k++
	}
	return k == len(rs) || !isCased(rs[k])
}

// stripAccents is BasicTokenizer._run_strip_accents: NFD, then drop category Mn.
func stripAccents(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	d := norm.NFD.String(s)
	var b strings.Builder
	b.Grow(len(d))
	for _, r := range d {
		if r >= 0x300 && unicode.Is(unicode.Mn, r) {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// pyStrip, pyLStrip and pyRStrip are Python's str.strip/lstrip/rstrip without arguments.
func pyStrip(s string) string  { return strings.TrimFunc(s, pyIsSpace) }
func pyLStrip(s string) string { return strings.TrimLeftFunc(s, pyIsSpace) }
func pyRStrip(s string) string { return strings.TrimRightFunc(s, pyIsSpace) }

// pySplit is Python's str.split() without arguments.
func pySplit(s string) []string { return strings.FieldsFunc(s, pyIsSpace) }

// sanitizeUTF8 replaces each invalid byte by U+FFFD, as ranging over the string does;
// Python text is always valid Unicode, so this only affects callers passing raw bytes.
func sanitizeUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// pyDecodeUTF8 decodes b as Python's bytes.decode("utf-8", errors) does: each maximal
// ill-formed subpart becomes one U+FFFD ("replace") or is dropped ("ignore").
// With complete=false, a trailing sequence that is a valid but unfinished prefix of a
// character is left out and its length returned, so a streaming caller can wait for
// the rest of it.
func pyDecodeUTF8(dst *strings.Builder, b []byte, ignore, complete bool) (pending int) {
	i := 0
	for i < len(b) {
		c := b[i]
		if c < 0x80 {
			dst.WriteByte(c)
			i++
			continue
		}
		need, lo, hi := 0, byte(0x80), byte(0xBF)
		switch {
		case c >= 0xC2 && c <= 0xDF:
			need = 1
		case c == 0xE0:
			need, lo = 2, 0xA0
		case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
			need = 2
		case c == 0xED:
			need, hi = 2, 0x9F
		case c == 0xF0:
			need, lo = 3, 0x90
		case c >= 0xF1 && c <= 0xF3:
			need = 3
		case c == 0xF4:
			need, hi = 3, 0x8F
		default:
			if !ignore {
				dst.WriteRune(utf8.RuneError)
			}
			i++
			continue
		}
		j := i + 1
		ok := true
		for k := 0; k < need; k++ {
			if j >= len(b) {
				ok = false
				break
			}
			x := b[j]
			l, h := byte(0x80), byte(0xBF)
			if k == 0 {
				l, h = lo, hi
			}
			if x < l || x > h {
				ok = false
				break
			}
			j++
		}
		if ok {
			dst.Write(b[i:j])
			i = j
			continue
		}
		if j >= len(b) && !complete {
			return len(b) - i
		}
		if !ignore {
			dst.WriteRune(utf8.RuneError)
		}
		i = j
	}
	return 0
}

func nfc(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return norm.NFC.String(s)
		}
	}
	return s
}

func utf8Valid(s string) bool { return utf8.ValidString(s) }
