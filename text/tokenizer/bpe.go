package tokenizer

import (
	"container/heap"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// bpe holds merge ranks and applies them to one pre-token, as the slow tokenizers'
// bpe() does: repeatedly take the adjacent pair of lowest rank and merge all its
// non-overlapping occurrences left to right, until no pair has a rank.
type bpe struct {
	symID   map[string]int32 // interned symbols that take part in merges
	symStr  []string
	merges  map[uint64]mergeInfo // (left, right) -> rank and merged symbol
	suffix  string               // CLIP: "</w>" appended to the last symbol
	noCache map[string]string    // pre-seeded results (CLIP's special tokens)

	mu    sync.Mutex
	cache map[string][]string
}

type mergeInfo struct{ rank, merged int32 }

// inertMerge marks a merges line that is not a pair: it takes a rank but never applies.
const inertMerge = "\x00inert"

// bpeCacheMax bounds the per-tokenizer cache of pre-token results; when full it is
// emptied. Pre-tokens longer than bpeCacheMaxKey bytes are not cached.
const (
	bpeCacheMax    = 1 << 14
	bpeCacheMaxKey = 256
)

func newBPE(merges [][2]string, suffix string) *bpe {
	b := &bpe{symID: map[string]int32{}, merges: map[uint64]mergeInfo{}, suffix: suffix, cache: map[string][]string{}}
	for rank, m := range merges {
		if m[0] == inertMerge {
			continue
		}
		a, c := b.intern(m[0]), b.intern(m[1])
		ab := b.intern(m[0] + m[1])
		// A pair listed twice keeps its last rank, as dict(zip(merges, range(n))) does.
		b.merges[uint64(uint32(a))<<32|uint64(uint32(c))] = mergeInfo{int32(rank), ab}
	}
	return b
}

func (b *bpe) intern(s string) int32 {
	if id, ok := b.symID[s]; ok {
		return id
	}
	id := int32(len(b.symStr))
	b.symID[s] = id
	b.symStr = append(b.symStr, s)
	return id
}

// bpeNode is one symbol of the word being merged: the bytes word[start:end] (plus the
// end-of-word suffix when end is the end of the word).
type bpeNode struct {
	sym        int32 // interned symbol, -1 if it takes part in no merge
	start, end int32
	prev, next int32
}

type bpeCand struct{ rank, pos int32 }
type bpeHeap []bpeCand

func (h bpeHeap) Len() int { return len(h) }
func (h bpeHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}
func (h bpeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *bpeHeap) Push(x any)   { *h = append(*h, x.(bpeCand)) }
func (h *bpeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// apply returns the BPE pieces of word (already byte-encoded).
func (b *bpe) apply(word string) []string {
	if r, ok := b.noCache[word]; ok {
		return []string{r}
	}
	if len(word) <= bpeCacheMaxKey {
		b.mu.Lock()
		r, ok := b.cache[word]
		b.mu.Unlock()
		if ok {
			return r
		}
	}
	r := b.merge(word)
	if len(word) <= bpeCacheMaxKey {
		b.mu.Lock()
		if len(b.cache) >= bpeCacheMax {
			b.cache = map[string][]string{}
		}
		b.cache[word] = r
		b.mu.Unlock()
	}
	return r
}

func (b *bpe) merge(word string) []string {
	if word == "" {
		return nil
	}
	nodes := make([]bpeNode, 0, len(word))
	var key []byte
	for i := range word {
		nodes = append(nodes, bpeNode{start: int32(i), prev: int32(len(nodes) - 1), next: int32(len(nodes) + 1)})
	}
	last := len(nodes) - 1
	nodes[last].next = -1
	for i := range nodes {
		end := int32(len(word))
		if i < last {
			end = nodes[i+1].start
		}
		nodes[i].end = end
		key = append(key[:0], word[nodes[i].start:end]...)
		if i == last {
			key = append(key, b.suffix...)
		}
		if id, ok := b.symID[string(key)]; ok {
			nodes[i].sym = id
		} else {
			nodes[i].sym = -1
		}
	}
	rankAt := func(i int32) (mergeInfo, bool) {
		j := nodes[i].next
		if j < 0 || nodes[i].sym < 0 || nodes[j].sym < 0 {
			return mergeInfo{}, false
		}
		m, ok := b.merges[uint64(uint32(nodes[i].sym))<<32|uint64(uint32(nodes[j].sym))]
		return m, ok
	}
	h := &bpeHeap{}
	for i := range nodes {
		if m, ok := rankAt(int32(i)); ok {
			*h = append(*h, bpeCand{m.rank, int32(i)})
		}
	}
	heap.Init(h)
	var group []int32
	for h.Len() > 0 {
		top := heap.Pop(h).(bpeCand)
		group = append(group[:0], top.pos)
		for h.Len() > 0 && (*h)[0].rank == top.rank {
			group = append(group, heap.Pop(h).(bpeCand).pos)
		}
		sort.Slice(group, func(i, j int) bool { return group[i] < group[j] })
		for _, i := range group {
			if nodes[i].sym == deadSym {
				continue
			}
			m, ok := rankAt(i)
			if !ok || m.rank != top.rank {
				continue
			}
			j := nodes[i].next
			nodes[i].sym = m.merged
			nodes[i].end = nodes[j].end
			nodes[j].sym = deadSym
			nodes[i].next = nodes[j].next
			if nodes[j].next >= 0 {
				nodes[nodes[j].next].prev = i
			}
			if pv := nodes[i].prev; pv >= 0 {
				if m2, ok := rankAt(pv); ok {
					heap.Push(h, bpeCand{m2.rank, pv})
				}
			}
			if m2, ok := rankAt(i); ok {
				heap.Push(h, bpeCand{m2.rank, i})
			}
		}
	}
	var out []string
	for i := int32(0); i >= 0; i = nodes[i].next {
		s := word[nodes[i].start:nodes[i].end]
		if int(nodes[i].end) == len(word) && b.suffix != "" {
			s += b.suffix
		}
		out = append(out, s)
	}
	return out
}

// deadSym marks a node merged into its left neighbour.
const deadSym = -2

// byteEncoder is GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves,
// the others to U+0100 onwards.
var byteEncoder, byteDecoder = func() ([256]rune, map[rune]byte) {
	var enc [256]rune
	dec := map[rune]byte{}
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			enc[b] = rune(b)
		} else {
			enc[b] = rune(256 + n)
			n++
		}
		dec[enc[b]] = byte(b)
	}
	return enc, dec
}()

func byteEncode(s string) string {
	var b strings.Builder
	b.Grow(len(s) * 2)
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteEncoder[s[i]])
	}
	return b.String()
}

// byteDecodeTokens maps the characters of the joined tokens back to bytes. A character
// outside the byte alphabet (possible only in an added token) contributes its UTF-8
// bytes (HF raises KeyError there).
func byteDecodeTokens(tokens []string) []byte {
	n := 0
	for _, t := range tokens {
		n += len(t)
	}
	out := make([]byte, 0, n)
	for _, t := range tokens {
		for _, r := range t {
			if r < rune(len(byteDecodeTable)) && byteDecodeTable[r] >= 0 {
				out = append(out, byte(byteDecodeTable[r]))
			} else {
				out = utf8.AppendRune(out, r)
			}
		}
	}
	return out
}

// byteDecodeTable is byteDecoder as an array (all byte characters are below U+0144).
var byteDecodeTable = func() (t [0x144]int16) {
	for i := range t {
		t[i] = -1
	}
	for r, b := range byteDecoder {
		t[r] = int16(b)
	}
	return t
}()

// gpt2Model is GPT2Tokenizer's _tokenize and convert_tokens_to_string.
type gpt2Model struct {
	b *bpe
	// split is the pre-tokenizer (GPT-2's regex, or a tokenizer.json Split pattern).
	split func(string) []string
}

func (g *gpt2Model) tokenize(t *tok, text string) []string {
	var out []string
	for _, w := range g.split(text) {
		out = append(out, g.b.apply(byteEncode(w))...)
	}
	return out
}

func (g *gpt2Model) segment(t *tok, tokens []string, final bool) string {
	var b strings.Builder
	pyDecodeUTF8(&b, byteDecodeTokens(tokens), t.errorsIgnore, final)
	return b.String()
}

// clipModel is CLIPTokenizer's _tokenize and convert_tokens_to_string.
type clipModel struct {
	b *bpe
	// fast selects the tokenizer.json normalisation (NFC, \s+ -> " ", lower-case)
	// instead of the slow class's BasicTokenizer fallback used without ftfy.
	fast  bool
	basic *wordPiece
	split func(string) []string
}

func (c *clipModel) tokenize(t *tok, text string) []string {
	if c.fast {
		text = clipFastNormalize(text)
	} else {
		text = strings.Join(c.basic.basic(text, nil), " ")
	}
	var out []string
	for _, w := range c.split(text) {
		out = append(out, c.b.apply(byteEncode(w))...)
	}
	return out
}

func (c *clipModel) segment(t *tok, tokens []string, final bool) string {
	var b strings.Builder
	pyDecodeUTF8(&b, byteDecodeTokens(tokens), t.errorsIgnore, final)
	s := b.String()
	if final {
		return pyStrip(strings.ReplaceAll(s, "</w>", " "))
	}
	return pyRStrip(pyLStrip(replaceStable(s, "</w>", " ")))
}

func clipFastNormalize(s string) string {
	s = nfc(s)
	var b strings.Builder
	b.Grow(len(s))
	inSpace := false
	for _, r := range s {
		if isRegexSpace(r) {
			if !inSpace {
				b.WriteByte(' ')
			}
			inSpace = true
			continue
		}
		inSpace = false
		pyLowerRune(&b, r)
	}
	return b.String()
}
