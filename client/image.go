package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
)

// Image is an image to send: the encoded bytes of a JPEG, PNG, GIF, WebP,
// BMP or TIFF file (the server sniffs the format). Build one with
// ImageFile, ImageBytes, ImageReader or ImageFrom; an error while reading
// it is returned by the call that uses it.
type Image struct {
	data []byte
	sha  string
	err  error
}

// ImageBytes uses data as the encoded image (not copied: do not modify it
// while a call uses it).
func ImageBytes(data []byte) Image { return newImage(data, nil) }

// ImageFile reads the image file at path.
func ImageFile(path string) Image {
	data, err := os.ReadFile(path)
	if err != nil {
		return Image{err: fmt.Errorf("glimpse client: reading image: %w", err)}
	}
	return newImage(data, nil)
}

// ImageReader reads an encoded image from r until EOF.
func ImageReader(r io.Reader) Image {
	data, err := io.ReadAll(r)
	if err != nil {
		return Image{err: fmt.Errorf("glimpse client: reading image: %w", err)}
	}
	return newImage(data, nil)
}

// ImageFrom encodes img as PNG (lossless, so the server sees exactly these
// pixels).
func ImageFrom(img image.Image) Image {
	if img == nil {
		return Image{err: fmt.Errorf("glimpse client: ImageFrom(nil)")}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Image{err: fmt.Errorf("glimpse client: encoding image as PNG: %w", err)}
	}
	return newImage(buf.Bytes(), nil)
}

func newImage(data []byte, err error) Image {
	if err != nil {
		return Image{err: err}
	}
	h := sha256.Sum256(data)
	return Image{data: data, sha: hex.EncodeToString(h[:])}
}

// SHA256 is the lowercase hex SHA-256 of the image bytes, as the server
// reports it (empty if the image could not be read).
func (i Image) SHA256() string { return i.sha }

// Err is the error reading or encoding the image, if any.
func (i Image) Err() error { return i.err }

// Len is the size of the encoded image in bytes.
func (i Image) Len() int { return len(i.data) }
