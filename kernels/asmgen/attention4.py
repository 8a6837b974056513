#!/usr/bin/env python3
"""Writes the four-query AVX-512 attention kernels of attention_avx512_amd64.s
(attnDotsT4AVX512, attnAxpy4AVX512) to stdout.

Not part of the build: run it when changing those kernels and paste its
output over the generated section (from "// func attnDotsT4AVX512" to the
end of the file):

    python3 kernels/asmgen/attention4.py

Register use: accumulators Z16-Z31 (Y8-Y11 for a last group of 8), the four
queries' values or probabilities broadcast into Z0-Z3, keys or values loaded
into Z4-Z7, the scale in Z14. Each accumulator is one FMA chain in the same
order as the one- and two-query kernels, so the results are the same bits.
"""
out = []
def e(s=""): out.append(s)

e("// func attnDotsT4AVX512(s, q *float32, ldq int, kt *float32, d, groups int, scale float32, bias *float32)")
e("TEXT ·attnDotsT4AVX512(SB), NOSPLIT, $0-64")
e("\tMOVQ s+0(FP), DI")
e("\tMOVQ q+8(FP), SI")
e("\tMOVQ ldq+16(FP), R11")
e("\tSHLQ $2, R11")
e("\tLEAQ (SI)(R11*1), R8")
e("\tLEAQ (R8)(R11*1), R13")
e("\tLEAQ (R13)(R11*1), R14")
e("\tMOVQ kt+24(FP), DX")
e("\tMOVQ d+32(FP), R9")
e("\tMOVQ groups+40(FP), CX")
e("\tVBROADCASTSS scale+48(FP), Z14")
e("\tMOVQ bias+56(FP), BX")
qregs = ["SI", "R8", "R13", "R14"]
for name, nz, grp in [("dq4", 4, 8), ("dq2", 2, 4), ("dq1", 1, 2), ("dqy", 1, 1)]:
    ymm = name == "dqy"
    V = "Y" if ymm else "Z"
    acc = (lambda k, c: "Y%d" % (8 + k)) if ymm else (lambda k, c: "Z%d" % (16 + 4 * k + c))
    width = 32 if ymm else 64
    e(name + ":")
    e("\tCMPQ CX, $%d" % grp)
    e("\tJL   %s_end" % name)
    for k in range(4):
        for c in range(nz):
            if ymm:
                e("\tVXORPS %s, %s, %s" % (acc(k, c), acc(k, c), acc(k, c)))
            else:
                e("\tVPXORD %s, %s, %s" % (acc(k, c), acc(k, c), acc(k, c)))
    e("\tMOVQ DX, R10")
    e("\tXORQ R12, R12")
    e("\tMOVQ R9, AX")
    e(name + "_m:")
    for k in range(4):
        e("\tVBROADCASTSS (%s)(R12*1), %s%d" % (qregs[k], V, k))
    for c in range(nz):
        e("\tVMOVUPS %d(R10), %s%d" % (64 * c, V, 4 + c))
    for c in range(nz):
        for k in range(4):
            e("\tVFMADD231PS %s%d, %s%d, %s" % (V, 4 + c, V, k, acc(k, c)))
    e("\tADDQ $256, R10")
    e("\tADDQ $4, R12")
    e("\tDECQ AX")
    e("\tJNZ  %s_m" % name)
    for k in range(4):
        for c in range(nz):
            e("\tVMULPS %s14, %s, %s" % (V, acc(k, c), acc(k, c)))
    e("\tTESTQ BX, BX")
    e("\tJZ   %s_nobias" % name)
    for k in range(4):
        for c in range(nz):
            e("\tVADDPS %d(BX), %s, %s" % (64 * c, acc(k, c), acc(k, c)))
    e("\tADDQ $%d, BX" % (width * nz))
    e(name + "_nobias:")
    for k in range(4):
        for c in range(nz):
            e("\tVMOVUPS %s, %d(DI)" % (acc(k, c), 256 * k + 64 * c))
    e("\tADDQ $%d, DI" % (width * nz))
    e("\tADDQ $%d, DX" % (width * nz))
    e("\tSUBQ $%d, CX" % grp)
    e("\tJMP  %s" % name)
    e(name + "_end:")
e("\tVZEROUPPER")
e("\tRET")
e()
e("// func attnAxpy4AVX512(o *float32, ldo int, p *float32, v *float32, ldv, n, d int)")
e("TEXT ·attnAxpy4AVX512(SB), NOSPLIT, $0-56")
e("\tMOVQ o+0(FP), DI")
e("\tMOVQ ldo+8(FP), SI")
e("\tSHLQ $2, SI")
e("\tLEAQ (DI)(SI*1), R11")
e("\tLEAQ (R11)(SI*1), R13")
e("\tLEAQ (R13)(SI*1), R14")
e("\tMOVQ p+16(FP), BX")
e("\tMOVQ v+24(FP), DX")
e("\tMOVQ ldv+32(FP), R8")
e("\tSHLQ $2, R8")
e("\tMOVQ n+40(FP), R9")
e("\tMOVQ d+48(FP), CX")
e("\tTESTQ R9, R9")
e("\tJZ   xq_done")
oregs = ["DI", "R11", "R13", "R14"]
for name, nz, cols in [("xq4", 4, 64), ("xq2", 2, 32), ("xq1", 1, 16), ("xqy", 1, 8)]:
    ymm = name == "xqy"
    V = "Y" if ymm else "Z"
    acc = (lambda k, c: "Y%d" % (8 + k)) if ymm else (lambda k, c: "Z%d" % (16 + 4 * k + c))
    width = 32 if ymm else 64
    e(name + ":")
    e("\tCMPQ CX, $%d" % cols)
    e("\tJL   %s_end" % name)
    for k in range(4):
        for c in range(nz):
            e("\tVMOVUPS %d(%s), %s" % (64 * c, oregs[k], acc(k, c)))
    e("\tMOVQ DX, R10")
    e("\tXORQ R12, R12")
    e("\tMOVQ R9, AX")
    e(name + "_m:")
    for k in range(4):
        e("\tVBROADCASTSS %d(BX)(R12*1), %s%d" % (256 * k, V, k))
    for c in range(nz):
        e("\tVMOVUPS %d(R10), %s%d" % (64 * c, V, 4 + c))
    for c in range(nz):
        for k in range(4):
            e("\tVFMADD231PS %s%d, %s%d, %s" % (V, 4 + c, V, k, acc(k, c)))
    e("\tADDQ $4, R12")
    e("\tADDQ R8, R10")
    e("\tDECQ AX")
    e("\tJNZ  %s_m" % name)
    for k in range(4):
        for c in range(nz):
            e("\tVMOVUPS %s, %d(%s)" % (acc(k, c), 64 * c, oregs[k]))
    for r in oregs:
        e("\tADDQ $%d, %s" % (width * nz, r))
    e("\tADDQ $%d, DX" % (width * nz))
    e("\tSUBQ $%d, CX" % cols)
    e("\tJMP  %s" % name)
    e(name + "_end:")
e("xq_done:")
e("\tVZEROUPPER")
e("\tRET")
print("\n".join(out))
