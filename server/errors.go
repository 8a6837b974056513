package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/glimpse-vlm/glimpse/fusion"
	"github.com/glimpse-vlm/glimpse/vision"
)

// This file is the one place that turns errors into gRPC statuses.

// inputError is bad client input found below the validation layer (an
// image that does not decode, a prompt the tokenizer refuses). Field is the
// request field it came from.
type inputError struct {
	field string
	err   error
}

func (e *inputError) Error() string { return e.field + ": " + e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// badInput wraps err as bad input in field.
func badInput(field string, err error) error { return &inputError{field: field, err: err} }

// violation is one field violation for invalidArgument.
func violation(field, format string, a ...any) *errdetails.BadRequest_FieldViolation {
	return &errdetails.BadRequest_FieldViolation{Field: field, Description: fmt.Sprintf(format, a...)}
}

// invalidArgument is INVALID_ARGUMENT with a BadRequest naming every
// violated field; the message repeats the first violation.
func invalidArgument(vs ...*errdetails.BadRequest_FieldViolation) error {
	msg := "invalid request"
	if len(vs) > 0 {
		msg = vs[0].Field + ": " + vs[0].Description
		if len(vs) > 1 {
			msg += fmt.Sprintf(" (and %d more)", len(vs)-1)
		}
	}
	st, err := status.New(codes.InvalidArgument, msg).WithDetails(&errdetails.BadRequest{FieldViolations: vs})
	if err != nil {
		return status.Error(codes.InvalidArgument, msg)
	}
	return st.Err()
}

// notFound is NOT_FOUND with a ResourceInfo ("model" or "image").
func notFound(resourceType, name, format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	st, err := status.New(codes.NotFound, msg).WithDetails(&errdetails.ResourceInfo{
		ResourceType: resourceType, ResourceName: name, Description: msg,
	})
	if err != nil {
		return status.Error(codes.NotFound, msg)
	}
	return st.Err()
}

// failedPrecondition is FAILED_PRECONDITION with a PreconditionFailure whose
// type is "TASK" (the model lacks the task) or "STATE" (not serving).
func failedPrecondition(kind, subject, format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	st, err := status.New(codes.FailedPrecondition, msg).WithDetails(&errdetails.PreconditionFailure{
		Violations: []*errdetails.PreconditionFailure_Violation{{Type: kind, Subject: subject, Description: msg}},
	})
	if err != nil {
		return status.Error(codes.FailedPrecondition, msg)
	}
	return st.Err()
}

// resourceExhausted is RESOURCE_EXHAUSTED with a RetryInfo.
func resourceExhausted(retry time.Duration, format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	st, err := status.New(codes.ResourceExhausted, msg).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retry)})
	if err != nil {
		return status.Error(codes.ResourceExhausted, msg)
	}
	return st.Err()
}

// toStatus maps an error from the layers below (vision, fusion, the
// model, contexts) to a gRPC status. ctx is the request's context: when it
// is done, its error wins over whatever the model returned.
func toStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return err
	}
	var in *inputError
	if errors.As(err, &in) {
		return invalidArgument(violation(in.field, "%s", imageErrorText(in.err)))
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded before the work finished")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, vision.ErrTooLarge), errors.Is(err, vision.ErrUnsupportedFormat), errors.Is(err, vision.ErrCorrupt):
		return invalidArgument(violation("image", "%v", err))
	case errors.Is(err, fusion.ErrUnknownArchitecture):
		return failedPrecondition("STATE", "model", "%v", err)
	}
	return status.Errorf(codes.Internal, "internal error: %v", err)
}
