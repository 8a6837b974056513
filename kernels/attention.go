package kernels

import (
	"fmt"
	"math"
	"sync"
)

// AttentionParams describes one multi-head scaled-dot-product attention.
type AttentionParams struct {
	// Heads is the number of heads; HeadDim the width of each.
	Heads, HeadDim int
	// Scale multiplies q·k (usually 1/√HeadDim).
	Scale float32
	// Causal masks key j for query i when j > i + (kLen − qLen), so that
	// with a KV cache the last query sees every key.
	Causal bool
	// KeyBias, if not nil, has kLen additive values added to every query's
	// score for key j (0 to attend; −10000 or −3.4e38 to mask padding).
	KeyBias []float32
}

// Tiling of the attention kernel. Keys are processed in blocks of
// attnKeyBlock starting at key 0 (a fixed partition of the key axis, the
// same for every query, so a query's result never depends on which other
// queries share the call); queries in blocks of attnQueryBlock rows, the
// unit of parallel work together with the head.
const (
	attnKeyBlock   = 64 // the assembly (attnDotsTAVX2, attnPackKTAVX2) assumes 64
	attnQueryBlock = 64
	// attnPackRows: a task with at least this many queries first copies its
	// head's values (and, on the portable path, keys) into contiguous
	// scratch (rows of HeadDim floats); rows strided by the model width
	// alias in the L1 cache. The copy changes addresses only, never the
	// arithmetic, so it may depend on the number of queries.
	attnPackRows = 8
	// attnSerialMACs: problems with fewer multiply-adds than this stay on
	// the calling goroutine (a decode step); attnChunkMACs is the least
	// work handed to one pool worker.
	attnSerialMACs = 1 << 20
	attnChunkMACs  = 1 << 18
)

// Attention computes, for every head h and query i,
//
//	out[i, h] = Σ_j softmax_j(Scale·q[i,h]·k[j,h] + KeyBias[j]) · v[j,h]
//
// where x[i,h] is the HeadDim-wide slice at columns h·HeadDim of row i.
// q has qLen rows (leading dimension ldq); k and v have kLen rows (ldk,
// ldv); out has qLen rows (ldo). With Causal, query i sees keys
// j ≤ i + kLen − qLen; causally masked keys get weight exactly 0 (they are
// not computed at all), and so do keys whose score is −Inf. A query that
// can attend to no key (causal with qLen > kLen, kLen = 0, or every bias
// −Inf) gets a zero output row. Keys masked with a finite bias such as
// −10000 or −3.4e38 (finfo.min) behave as in PyTorch: the bias is added to
// the float32 score, so a row whose keys are all at finfo.min attends
// uniformly, and a masked key next to an unmasked one gets weight 0.
//
// Evaluation (flash-attention style: no more than one tile of scores per
// worker at a time). Work is split into tasks of one head × a run of blocks
// of 64 queries (runs as long as leaves about four tasks per thread); a
// task prepares its head's keys once: on the AVX2 path (HeadDim a multiple
// of 8) it transposes them into blocks of 64 keys (scores become FMA chains
// over the head dimension, eight keys per vector), and with at least 8
// queries it copies the values into contiguous rows (copies of inputs, not
// scores). Keys are visited in blocks of 64 starting at key 0. For one
// query at a time (or two, or with AVX-512 four, sharing the loads of keys
// and values, with the same arithmetic per query), the scores of one key block are computed (the tile: 64
// floats per query), each as (Σ_t q[t]·k[j][t], summed in a fixed
// order)·Scale + KeyBias[j], and an online softmax keeps the query's running maximum m,
// running sum l (float64) and unnormalised output o (HeadDim floats): when
// a block raises the maximum, l and o are first scaled by exp(m_old −
// m_new); then l += Σ exp(s − m) and o += Σ exp(s − m)·v (in increasing key
// order). Finally out = o·float32(1/l).
//
// The key blocks are the same for every query and a query's arithmetic
// never depends on the other queries in the call, so query i's result is
// bit-for-bit the same whether it is computed alone (e.g. a decode step
// against a KV cache holding exactly the keys it may see) or with any
// other queries, and whatever the number of threads (batch invariance).
// That is why the tile is one query × one key block rather than a query
// block × key block from a GEMM whose blocking would depend on qLen. Large
// problems (≥ 2^20 multiply-adds) run in parallel on the worker pool;
// smaller ones, such as decode steps, on the calling goroutine. Keys that
// many calls reuse (cross-attention at every decode step) can be prepared
// once with PrepareKeys and passed through AttentionBatch.
//
// Aliasing: out may be the same slice as q with ldo == ldq (each query row
// is read only before its own output is written); out must not overlap k,
// v or KeyBias. Inconsistent sizes (short slices, ld < Heads·HeadDim,
// len(KeyBias) < kLen) are programming errors and panic with a message.
func Attention(p AttentionParams, q []float32, qLen, ldq int, k []float32, ldk int, v []float32, ldv int, kLen int, out []float32, ldo int) {
	seq := AttentionSeq{Q: q, QLen: qLen, LDQ: ldq, K: k, LDK: ldk, V: v, LDV: ldv, KLen: kLen, KeyBias: p.KeyBias, Out: out, LDO: ldo}
	p.KeyBias = nil
	AttentionBatch(p, []AttentionSeq{seq})
}

// AttentionSeq is one independent sequence of an AttentionBatch: its
// queries, keys, values (row-major with leading dimensions), its own
// additive per-key bias (nil: none; else KLen values, e.g. its padding
// mask) and its output.
type AttentionSeq struct {
	Q         []float32
	QLen, LDQ int
	K         []float32
	LDK       int
	// Keys, if not nil, replaces K and LDK: the same keys prepared once by
	// PrepareKeys (results are bit-for-bit the same).
	Keys    *AttentionKeys
	V       []float32
	LDV     int
	KLen    int
	KeyBias []float32
	Out     []float32
	LDO     int
}

// AttentionKeys holds the keys of an attention (every head) laid out once
// for the kernel, for keys that many calls reuse: e.g. cross-attention over
// image or question states, attended by a new query at every decode step.
// Without it each call re-arranges the keys it reads.
type AttentionKeys struct {
	heads, d, kLen int
	vec            bool
	data           []float32 // per head: transposed key blocks (vec) or kLen×d rows
	headStride     int
}

// PrepareKeys lays out the kLen keys k (leading dimension ldk, Heads·HeadDim
// columns) for Attention calls with parameters of the same Heads and HeadDim,
// through AttentionSeq.Keys. k is not retained.
func PrepareKeys(p AttentionParams, k []float32, ldk, kLen int) *AttentionKeys {
	if p.Heads <= 0 || p.HeadDim <= 0 || kLen < 0 {
		panic(fmt.Sprintf("kernels.PrepareKeys: Heads = %d, HeadDim = %d and kLen = %d must be positive", p.Heads, p.HeadDim, kLen))
	}
	d := p.HeadDim
	if kLen > 0 {
		checkMatrix("PrepareKeys", "k", len(k), kLen, p.Heads*d, ldk)
	}
	ak := &AttentionKeys{heads: p.Heads, d: d, kLen: kLen, vec: hasAVX2FMA && d%8 == 0}
	if ak.vec {
		ak.headStride = (kLen + attnKeyBlock - 1) / attnKeyBlock * attnKeyBlock * d
	} else {
		ak.headStride = kLen * d
	}
	ak.data = make([]float32, p.Heads*ak.headStride)
	for h := 0; h < p.Heads && kLen > 0; h++ {
		dst := ak.data[h*ak.headStride : (h+1)*ak.headStride]
		if ak.vec {
			packKeysT(dst, k[h*d:], ldk, kLen, d)
		} else {
			for j := 0; j < kLen; j++ {
				copy(dst[j*d:j*d+d], k[j*ldk+h*d:j*ldk+h*d+d])
			}
		}
	}
	return ak
}

// KLen returns the number of keys.
func (ak *AttentionKeys) KLen() int { return ak.kLen }

// Bytes returns the memory the prepared keys hold.
func (ak *AttentionKeys) Bytes() int { return 4 * len(ak.data) }

// AttentionKeysBytes returns what PrepareKeys allocates for kLen keys with
// p's Heads and HeadDim (on the assembly path the keys of each head are
// padded to a multiple of 64), for memory accounting.
func AttentionKeysBytes(p AttentionParams, kLen int) int {
	if hasAVX2FMA && p.HeadDim%8 == 0 {
		kLen = (kLen + attnKeyBlock - 1) / attnKeyBlock * attnKeyBlock
	}
	return 4 * p.Heads * kLen * p.HeadDim
}

// packKeysT writes keys [0, kEnd) of one head (rows of k, ldk apart, d
// columns) as transposed blocks of attnKeyBlock keys, dst[b·64·d + t·64 +
// j], zero-padded to a multiple of 8 keys.
func packKeysT(dst, k []float32, ldk, kEnd, d int) {
	const bk = attnKeyBlock
	nb := (kEnd + bk - 1) / bk
	for b := 0; b < nb; b++ {
		j0 := b * bk
		nk := min(bk, kEnd-j0)
		blk := dst[b*bk*d : (b+1)*bk*d]
		g := nk / 8
		if g > 0 {
			attnPackKTAVX2(&blk[0], &k[j0*ldk], ldk, g, d)
		}
		for j := g * 8; j < (nk+7)&^7; j++ {
			for t := 0; t < d; t++ {
				var x float32
				if j < nk {
					x = k[(j0+j)*ldk+t]
				}
				blk[t*bk+j] = x
			}
		}
	}
}

// AttentionBatch runs Attention on every sequence of seqs with the shared
// parameters p (Heads, HeadDim, Scale, Causal; p.KeyBias must be nil: each
// sequence carries its own KeyBias), scheduling all sequences × heads ×
// query blocks on the worker pool at once. Each sequence's result is
// bit-for-bit what Attention gives for it alone. The aliasing rules of
// Attention apply per sequence; distinct sequences must not write over
// each other's inputs.
func AttentionBatch(p AttentionParams, seqs []AttentionSeq) {
	if p.Heads <= 0 || p.HeadDim <= 0 {
		panic(fmt.Sprintf("kernels.Attention: Heads = %d and HeadDim = %d must be positive", p.Heads, p.HeadDim))
	}
	if p.KeyBias != nil {
		panic("kernels.AttentionBatch: p.KeyBias must be nil; set AttentionSeq.KeyBias per sequence")
	}
	width := p.Heads * p.HeadDim
	// A task is one head of one sequence × a run of query blocks; its
	// keys and values are packed once for all its blocks. Runs are as long
	// as possible while leaving about four tasks per thread.
	totalBlocks := 0
	var macs float64
	for i := range seqs {
		s := &seqs[i]
		if s.QLen < 0 || s.KLen < 0 {
			panic(fmt.Sprintf("kernels.Attention: qLen = %d and kLen = %d must not be negative", s.QLen, s.KLen))
		}
		if s.QLen == 0 {
			continue
		}
		checkMatrix("Attention", "q", len(s.Q), s.QLen, width, s.LDQ)
		checkMatrix("Attention", "out", len(s.Out), s.QLen, width, s.LDO)
		if s.Keys != nil {
			if ak := s.Keys; ak.heads != p.Heads || ak.d != p.HeadDim || ak.kLen != s.KLen {
				panic(fmt.Sprintf("kernels.Attention: prepared keys have %d heads × %d, %d keys; the call has %d heads × %d, %d keys", ak.heads, ak.d, ak.kLen, p.Heads, p.HeadDim, s.KLen))
			}
		}
		if s.KLen > 0 {
			if s.Keys == nil {
				checkMatrix("Attention", "k", len(s.K), s.KLen, width, s.LDK)
			}
			checkMatrix("Attention", "v", len(s.V), s.KLen, width, s.LDV)
		}
		if s.KeyBias != nil && len(s.KeyBias) < s.KLen {
			panic(fmt.Sprintf("kernels.Attention: len(KeyBias) = %d < kLen = %d", len(s.KeyBias), s.KLen))
		}
		totalBlocks += p.Heads * ((s.QLen + attnQueryBlock - 1) / attnQueryBlock)
		macs += float64(s.QLen) * float64(s.KLen) * float64(width)
	}
	if totalBlocks == 0 {
		return
	}
	run := 1 // query blocks per task
	if macs >= attnSerialMACs {
		run = max(1, totalBlocks/(4*Threads()))
	} else {
		run = totalBlocks
	}
	first := make([]int, len(seqs)+1) // prefix sums of tasks per sequence
	for i := range seqs {
		nq := (seqs[i].QLen + attnQueryBlock - 1) / attnQueryBlock
		first[i+1] = first[i] + p.Heads*((nq+run-1)/run)
	}
	tasks := first[len(seqs)]
	grain := tasks
	if macs >= attnSerialMACs {
		grain = max(1, int(float64(tasks)*attnChunkMACs/macs))
	}
	vec := hasAVX2FMA && p.HeadDim%8 == 0
	parallelFor(tasks, grain, func(lo, hi int) {
		sc := getAttnScratch(p.HeadDim)
		defer attnScratchPool.Put(sc)
		si := 0
		for t := lo; t < hi; t++ {
			for first[si+1] <= t {
				si++
			}
			r := t - first[si]
			h, c := r%p.Heads, r/p.Heads
			s := &seqs[si]
			i0 := c * run * attnQueryBlock
			attnTask(&p, s, h, i0, min(i0+run*attnQueryBlock, s.QLen), vec, sc)
		}
	})
}

// attnScratch is one worker's state: the tile of scores for one query ×
// one key block and the online-softmax state of one query block.
type attnScratch struct {
	s    []float32 // attnKeyBlock scores
	s2   []float32 // the second query's scores (two-query kernels)
	s4   []float32 // four queries' scores, rows of attnKeyBlock (four-query kernels)
	kv   []float32 // contiguous values (and keys, portable path) of one head
	kt   []float32 // transposed key blocks (assembly path)
	bias []float32 // zero-padded key bias (assembly path)
	o    []float32 // attnQueryBlock × HeadDim unnormalised outputs
	m    []float32 // running maxima
	l    []float64 // running sums
	seen []bool    // whether the query has met an attendable key
}

var attnScratchPool sync.Pool

func getAttnScratch(d int) *attnScratch {
	if sc, ok := attnScratchPool.Get().(*attnScratch); ok && cap(sc.o) >= attnQueryBlock*d {
		sc.o = sc.o[:attnQueryBlock*d]
		return sc
	}
	return &attnScratch{
		s:    make([]float32, attnKeyBlock),
		s2:   make([]float32, attnKeyBlock),
		s4:   make([]float32, 4*attnKeyBlock),
		o:    make([]float32, attnQueryBlock*d),
		m:    make([]float32, attnQueryBlock),
		l:    make([]float64, attnQueryBlock),
		seen: make([]bool, attnQueryBlock),
	}
}

// grow returns buf resliced to n elements, reallocated if too small.
func grow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}

// attnTask computes head h of queries [i0, i1): it packs the keys and
// values the last of them may see, then runs attnBlock on each block of
// attnQueryBlock queries.
func attnTask(p *AttentionParams, s *AttentionSeq, h, i0, i1 int, vec bool, sc *attnScratch) {
	const bk = attnKeyBlock
	d := p.HeadDim
	kEnd := attnLimit(p, s, i1-1) // the last query sees the most keys
	if kEnd == 0 {
		for b0 := i0; b0 < i1; b0 += attnQueryBlock {
			attnBlock(p, s, h, b0, min(b0+attnQueryBlock, i1), vec, &attnKV{}, sc) // zero rows
		}
		return
	}
	col := h * d
	kv := attnKV{v: s.V[col:], ldv: s.LDV, bias: s.KeyBias}
	packK := true // whether the portable path should copy the keys
	switch ak := s.Keys; {
	case ak != nil:
		// ak.vec == vec: both follow from hasAVX2FMA and HeadDim.
		hk := ak.data[h*ak.headStride : (h+1)*ak.headStride]
		if ak.vec {
			kv.kt = hk
		} else {
			kv.k, kv.ldk = hk, d
			packK = false
		}
	default:
		kv.k, kv.ldk = s.K[col:], s.LDK
		if vec && kEnd > 0 {
			nb := (kEnd + bk - 1) / bk
			sc.kt = grow(sc.kt, nb*bk*d)
			packKeysT(sc.kt, kv.k, kv.ldk, kEnd, d)
			kv.kt = sc.kt
		}
	}
	if vec && kEnd > 0 && kv.bias != nil {
		// The assembly reads whole groups of 8 keys: pad the bias with 0.
		nb := (kEnd + bk - 1) / bk
		sc.bias = grow(sc.bias, nb*bk)
		copy(sc.bias, kv.bias[:kEnd])
		clear(sc.bias[kEnd:])
		kv.bias = sc.bias
	}
	// Rows already d floats apart (one head as wide as the matrix) are
	// contiguous: copying them would change nothing but the time taken.
	packV := kv.ldv != d
	packK = packK && !vec && kv.ldk != d
	if i1-i0 >= attnPackRows && kEnd > 0 && (packV || packK) {
		sc.kv = grow(sc.kv, 2*kEnd*d)
		if packV {
			vp := sc.kv[:kEnd*d]
			for j := 0; j < kEnd; j++ {
				copy(vp[j*d:j*d+d], kv.v[j*kv.ldv:j*kv.ldv+d])
			}
			kv.v, kv.ldv = vp, d
		}
		if packK {
			kp := sc.kv[kEnd*d : 2*kEnd*d]
			for j := 0; j < kEnd; j++ {
				copy(kp[j*d:j*d+d], kv.k[j*kv.ldk:j*kv.ldk+d])
			}
			kv.k, kv.ldk = kp, d
		}
	}
	for b0 := i0; b0 < i1; b0 += attnQueryBlock {
		attnBlock(p, s, h, b0, min(b0+attnQueryBlock, i1), vec, &kv, sc)
	}
}

// attnKV is one head's keys and values as a task reads them: row-major
// (possibly packed copies), plus on the assembly path the transposed key
// blocks and the zero-padded bias.
type attnKV struct {
	k, v     []float32
	ldk, ldv int
	kt       []float32
	bias     []float32
}

// The two-query kernels of the assembly path: the AVX2 ones, or on CPUs
// with AVX-512 the zmm versions, which give the same bits (see
// attention_avx512_amd64.s).
var (
	attnDots2 = attnDotsT2AVX2
	attnAxpy2 = attnAxpy2AVX2
)

// The four-query kernels (AVX-512 only; nil elsewhere): the same
// arithmetic per query again, with four queries sharing each load of keys
// and values. For wide heads (HeadDim 768 in folded cross-attention) the
// key and value blocks stream from L2 once per group of queries, so
// larger groups read them less often.
var (
	attnDots4 func(s, q *float32, ldq int, kt *float32, d, groups int, scale float32, bias *float32)
	attnAxpy4 func(o *float32, ldo int, p, v *float32, ldv, n, d int)
)

// attnLimit is the number of keys query i may see.
func attnLimit(p *AttentionParams, s *AttentionSeq, i int) int {
	if p.Causal {
		return max(0, min(s.KLen, i+s.KLen-s.QLen+1))
	}
	return s.KLen
}

// attnBlock computes head h of queries [i0, i1) (at most attnQueryBlock).
func attnBlock(p *AttentionParams, s *AttentionSeq, h, i0, i1 int, vec bool, kv *attnKV, sc *attnScratch) {
	const bk = attnKeyBlock
	d := p.HeadDim
	rows := i1 - i0
	kEnd := attnLimit(p, s, i1-1)
	for r := 0; r < rows; r++ {
		sc.seen[r] = false
		sc.l[r] = 0
		clear(sc.o[r*d : r*d+d])
	}
	col := h * d
	bias := kv.bias
	for kb := 0; kb < kEnd; kb += bk {
		vblk := kv.v[kb*kv.ldv:]
		var bp *float32
		if vec && bias != nil {
			bp = &bias[kb]
		}
		for r := 0; r < rows; r++ {
			i := i0 + r
			n := min(bk, attnLimit(p, s, i)-kb)
			if n <= 0 {
				continue
			}
			qi := s.Q[i*s.LDQ+col : i*s.LDQ+col+d]
			o := sc.o[r*d : r*d+d]
			if vec && attnDots4 != nil && r+3 < rows {
				sc.quad(p, s, kv, r, i, kb, n, qi, bp)
				r += 3
				continue
			}
			if vec && r+1 < rows {
				// Two queries at once: the same arithmetic per query as below,
				// sharing the loads of keys and values.
				n1 := min(bk, attnLimit(p, s, i+1)-kb) // ≥ n
				q1 := s.Q[(i+1)*s.LDQ+col : (i+1)*s.LDQ+col+d]
				o1 := sc.o[(r+1)*d : (r+1)*d+d]
				attnDots2(&sc.s[0], &sc.s2[0], &qi[0], &q1[0], &kv.kt[kb*d], d, (n1+7)/8, p.Scale, bp)
				sv0, sv1 := sc.s[:n], sc.s2[:n1]
				a0 := sc.softmaxStep(r, sv0, o)
				a1 := sc.softmaxStep(r+1, sv1, o1)
				switch {
				case a0 && a1:
					attnAxpy2(&o[0], &o1[0], &sv0[0], &sv1[0], &vblk[0], kv.ldv, n, d)
					if n1 > n {
						attnAxpyAVX2(&o1[0], &sv1[n], &vblk[n*kv.ldv], kv.ldv, n1-n, d)
					}
				case a0:
					attnAxpyAVX2(&o[0], &sv0[0], &vblk[0], kv.ldv, n, d)
				case a1:
					attnAxpyAVX2(&o1[0], &sv1[0], &vblk[0], kv.ldv, n1, d)
				}
				r++
				continue
			}
			sv := sc.s[:n]
			if vec {
				attnDotsTAVX2(&sc.s[0], &qi[0], &kv.kt[kb*d], d, (n+7)/8, p.Scale, bp)
			} else {
				var bb []float32
				if bias != nil {
					bb = bias[kb:]
				}
				attnDotsGo(sv, qi, kv.k[kb*kv.ldk:], kv.ldk, d, p.Scale, bb)
			}
			if !sc.softmaxStep(r, sv, o) {
				continue
			}
			if vec {
				attnAxpyAVX2(&o[0], &sv[0], &vblk[0], kv.ldv, n, d)
			} else {
				attnAxpyGo(o, sv, vblk, kv.ldv, d)
			}
		}
	}
	for r := 0; r < rows; r++ {
		i := i0 + r
		dst := s.Out[i*s.LDO+col : i*s.LDO+col+d]
		if !sc.seen[r] {
			clear(dst)
			continue
		}
		inv := float32(1 / sc.l[r])
		o := sc.o[r*d : r*d+d]
		if vec {
			scaleToAVX2(&dst[0], &o[0], d, inv)
		} else {
			for t, x := range o {
				dst[t] = x * inv
			}
		}
	}
}

// quad is attnBlock's step for queries r..r+3 (rows i..i+3 of s) and
// the key block at kb: n keys for the first query, at least as many for
// each next one (causal). The scores of all four come from one pass over
// the block; each query's softmax step and value sum are its own, with the
// same arithmetic as the one- and two-query paths.
func (sc *attnScratch) quad(p *AttentionParams, s *AttentionSeq, kv *attnKV, r, i, kb, n int, q0 []float32, bp *float32) {
	const bk = attnKeyBlock
	d := p.HeadDim
	var ns [4]int
	ns[0] = n
	for k := 1; k < 4; k++ {
		ns[k] = min(bk, attnLimit(p, s, i+k)-kb)
	}
	_ = s.Q[(i+3)*s.LDQ+p.Heads*d-1] // the four query rows are in bounds
	attnDots4(&sc.s4[0], &q0[0], s.LDQ, &kv.kt[kb*d], d, (ns[3]+7)/8, p.Scale, bp)
	vblk := kv.v[kb*kv.ldv:]
	all := ns[0] == ns[3]
	var live [4]bool
	for k := range 4 {
		live[k] = sc.softmaxStep(r+k, sc.s4[k*bk:k*bk+ns[k]], sc.o[(r+k)*d:(r+k+1)*d])
		all = all && live[k]
	}
	if all {
		attnAxpy4(&sc.o[r*d], d, &sc.s4[0], &vblk[0], kv.ldv, n, d)
		return
	}
	for k := range 4 {
		if live[k] {
			attnAxpyAVX2(&sc.o[(r+k)*d], &sc.s4[k*bk], &vblk[0], kv.ldv, ns[k], d)
		}
	}
}

// softmaxStep folds one key block's scores sv into query r's online
// softmax: it rescales o and l when the block raises the maximum and
// replaces sv by exp(sv − m). It reports false (and changes nothing) when
// every score is −Inf: the block then contributes exactly nothing.
func (sc *attnScratch) softmaxStep(r int, sv, o []float32) bool {
	mb := maxF32(sv)
	if math.IsInf(float64(mb), -1) {
		return false
	}
	switch {
	case !sc.seen[r]:
		sc.seen[r] = true
		sc.m[r] = mb
	case mb > sc.m[r]:
		c := float32(math.Exp(float64(sc.m[r] - mb)))
		sc.l[r] *= float64(c)
		scaleF32(o, c)
		sc.m[r] = mb
	}
	sc.l[r] += expShiftSum(sv, sc.m[r])
	return true
}

// attnDotsGo is the portable score kernel: s[j] = (Σ_t q[t]·k[j·ldk+t])·
// scale (+ bias[j]), the sum taken as four partial sums over t ≡ 0, 1, 2,
// 3 (mod 4) in increasing t, combined as (p0+p1)+(p2+p3), then the
// remaining t in order — the same for every key.
func attnDotsGo(s, q, k []float32, ldk, d int, scale float32, bias []float32) {
	q = q[:d]
	d4 := d &^ 3
	for j := range s {
		kj := k[j*ldk : j*ldk+d]
		var a0, a1, a2, a3 float32
		for t := 0; t < d4; t += 4 {
			qq, kk := q[t:t+4:t+4], kj[t:t+4:t+4]
			a0 += qq[0] * kk[0]
			a1 += qq[1] * kk[1]
			a2 += qq[2] * kk[2]
			a3 += qq[3] * kk[3]
		}
		acc := (a0 + a1) + (a2 + a3)
		for t := d4; t < d; t++ {
			acc += q[t] * kj[t]
		}
		acc *= scale
		if bias != nil {
			acc += bias[j]
		}
		s[j] = acc
	}
}

// attnAxpyGo is the portable attnAxpyAVX2: o[t] += Σ_j p[j]·v[j·ldv+t], in
// increasing j.
func attnAxpyGo(o, p, v []float32, ldv, d int) {
	o = o[:d]
	d4 := d &^ 3
	for j, pj := range p {
		vj := v[j*ldv : j*ldv+d]
		for t := 0; t < d4; t += 4 {
			oo, vv := o[t:t+4:t+4], vj[t:t+4:t+4]
			oo[0] += pj * vv[0]
			oo[1] += pj * vv[1]
			oo[2] += pj * vv[2]
			oo[3] += pj * vv[3]
		}
		for t := d4; t < d; t++ {
			o[t] += pj * vj[t]
		}
	}
}
