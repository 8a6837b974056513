package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"time"

	// Formats for the interim decoder; vision.Decode replaces it.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	"github.com/glimpse-vlm/glimpse/fusion"
	pb "github.com/glimpse-vlm/glimpse/proto/glimpse/v1"
)

// errImage marks an image the interim decoder could not take.
var errImage = errors.New("bad image")

// decodeImage decodes encoded image bytes under the server's limits.
func (s *Server) decodeImage(data []byte) (image.Image, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errImage, err)
	}
	if int64(cfg.Width)*int64(cfg.Height) > s.cfg.MaxImagePixels {
		return nil, fmt.Errorf("%w: %dx%d pixels is more than the limit of %d", errImage, cfg.Width, cfg.Height, s.cfg.MaxImagePixels)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errImage, err)
	}
	return img, nil
}

// imageErrorText describes an image error for a field violation.
func imageErrorText(err error) string { return err.Error() }

// hashImage is the lowercase hex SHA-256 of data.
func hashImage(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// imageState returns the encoded state of img for model e, from the cache
// when possible. field names img in the request, for errors. It returns
// the image's SHA-256 and the time spent decoding and encoding (zero on a
// cache hit).
func (s *Server) imageState(ctx context.Context, e *modelEntry, m fusion.Model, img *pb.Image, field string) (*fusion.ImageState, string, time.Duration, error) {
	switch src := img.GetSource().(type) {
	case *pb.Image_Sha256:
		key := normalizeSHA(src.Sha256)
		if st, ok := e.cache.get(key); ok {
			return st, key, 0, nil
		}
		return nil, key, 0, notFound("image", key,
			"%s.sha256: model %s holds no image %s (evicted or never sent); send the image bytes again", field, e.name, key)
	case *pb.Image_Data:
		key := hashImage(src.Data)
		if st, ok := e.cache.get(key); ok {
			return st, key, 0, nil
		}
		start := time.Now()
		dec, err := s.decodeImage(src.Data)
		if err != nil {
			return nil, key, 0, badInput(field+".data", err)
		}
		st, err := m.EncodeImage(ctx, dec)
		if err != nil {
			return nil, key, 0, err
		}
		e.cache.put(key, st)
		return st, key, time.Since(start), nil
	}
	return nil, "", 0, invalidArgument(violation(field, "an image is required (data or sha256)"))
}
