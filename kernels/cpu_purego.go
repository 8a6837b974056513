//go:build purego || !amd64

package kernels

const purego = true
