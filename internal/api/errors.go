package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"hivenet/internal/store"
	"hivenet/internal/translate"
)

// Error is an API error: the HTTP status and the NeutronError body.
type Error struct {
	Status  int
	Type    string
	Message string
	Detail  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s (HTTP %d)", e.Type, e.Message, e.Status) }

// Errorf returns an *Error (for hooks such as Config.Trace).
func Errorf(status int, typ, format string, a ...any) *Error {
	return &Error{Status: status, Type: typ, Message: fmt.Sprintf(format, a...)}
}

func badRequest(format string, a ...any) *Error {
	return Errorf(http.StatusBadRequest, "HTTPBadRequest", format, a...)
}

func invalidInput(field, format string, a ...any) *Error {
	return Errorf(http.StatusBadRequest, "InvalidInput", "Invalid input for %s. Reason: %s.", field, fmt.Sprintf(format, a...))
}

func notFound(kind, id string) *Error {
	return Errorf(http.StatusNotFound, kind+"NotFound", "%s %s could not be found.", kind, id)
}

func conflict(typ, format string, a ...any) *Error {
	return Errorf(http.StatusConflict, typ, format, a...)
}

func forbidden(format string, a ...any) *Error {
	return Errorf(http.StatusForbidden, "PolicyNotAuthorized", format, a...)
}

// asError maps any error to an *Error: API errors pass through, field
// validation errors become 400 InvalidInput, store conflicts 503, the rest
// 500 (and logged by the caller).
func asError(err error) (*Error, bool) {
	var ae *Error
	if errors.As(err, &ae) {
		return ae, true
	}
	var fe *translate.FieldError
	if errors.As(err, &fe) {
		return &Error{Status: http.StatusBadRequest, Type: "InvalidInput", Message: fe.Error()}, true
	}
	if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.Unavailable || status.Code(err) == codes.DeadlineExceeded {
		return Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "the store (etcd) is not answering; retry later"), false
	}
	if errors.Is(err, store.ErrTooManyConflicts) {
		return Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "too many concurrent updates of the same objects; retry"), true
	}
	return Errorf(http.StatusInternalServerError, "InternalServerError", "internal error"), false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		json.NewEncoder(w).Encode(v)
	}
}

func writeError(w http.ResponseWriter, e *Error) {
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Keystone uri="none"`)
	}
	writeJSON(w, e.Status, map[string]any{"NeutronError": map[string]string{
		"type": e.Type, "message": e.Message, "detail": e.Detail,
	}})
}
