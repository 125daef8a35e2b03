package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// dialect is the SQL flavour of a database. The store's queries are written
// once, with "?" placeholders and integer booleans (SQLite's native form);
// the handles below translate them for PostgreSQL, so both backends run the
// same statements and are held to the same contract tests.
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

// rebind turns "?" placeholders into "$1", "$2"… for PostgreSQL. Question
// marks inside quoted literals are left alone.
func (d dialect) rebind(q string) string {
	if d != dialectPostgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// args stores booleans as 0/1: the schema keeps them in integer columns on
// both backends, so that sums and comparisons read the same.
func (d dialect) args(a []any) []any {
	if d != dialectPostgres {
		return a
	}
	for i, v := range a {
		if b, ok := v.(bool); ok {
			if b {
				a[i] = int64(1)
			} else {
				a[i] = int64(0)
			}
		}
	}
	return a
}

// greatest is the scalar two-argument maximum.
func (d dialect) greatest() string {
	if d == dialectPostgres {
		return "greatest"
	}
	return "max"
}

// eachOf is a FROM item yielding the elements of a JSON array of strings
// column as alias.value.
func (d dialect) eachOf(col, alias string) string {
	if d == dialectPostgres {
		return "jsonb_array_elements_text(" + col + "::jsonb) AS " + alias + "(value)"
	}
	return "json_each(" + col + ") AS " + alias
}

// eachPair is a FROM item yielding the members of a JSON object passed as
// one text parameter as alias.key and alias.value (a text on PostgreSQL:
// cast it).
func (d dialect) eachPair(alias string) string {
	if d == dialectPostgres {
		return "jsonb_each_text(CAST(? AS jsonb)) AS " + alias + "(key, value)"
	}
	return "json_each(?) AS " + alias
}

// sqlDB is a *sql.DB whose statements are translated for its dialect.
type sqlDB struct {
	*sql.DB
	d dialect
}

func (x *sqlDB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return x.DB.ExecContext(ctx, x.d.rebind(q), x.d.args(args)...)
}

func (x *sqlDB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return x.DB.QueryContext(ctx, x.d.rebind(q), x.d.args(args)...)
}

func (x *sqlDB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return x.DB.QueryRowContext(ctx, x.d.rebind(q), x.d.args(args)...)
}

func (x *sqlDB) PrepareContext(ctx context.Context, q string) (*sqlStmt, error) {
	s, err := x.DB.PrepareContext(ctx, x.d.rebind(q))
	if err != nil {
		return nil, err
	}
	return &sqlStmt{Stmt: s, d: x.d}, nil
}

func (x *sqlDB) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sqlTx, error) {
	t, err := x.DB.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &sqlTx{Tx: t, d: x.d}, nil
}

// sqlTx is a *sql.Tx whose statements are translated for its dialect.
type sqlTx struct {
	*sql.Tx
	d dialect
}

func (x *sqlTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return x.Tx.ExecContext(ctx, x.d.rebind(q), x.d.args(args)...)
}

func (x *sqlTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return x.Tx.QueryContext(ctx, x.d.rebind(q), x.d.args(args)...)
}

func (x *sqlTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return x.Tx.QueryRowContext(ctx, x.d.rebind(q), x.d.args(args)...)
}

func (x *sqlTx) PrepareContext(ctx context.Context, q string) (*sqlStmt, error) {
	s, err := x.Tx.PrepareContext(ctx, x.d.rebind(q))
	if err != nil {
		return nil, err
	}
	return &sqlStmt{Stmt: s, d: x.d}, nil
}

// sqlStmt is a prepared statement whose arguments are translated for its dialect.
type sqlStmt struct {
	*sql.Stmt
	d dialect
}

func (x *sqlStmt) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	return x.Stmt.ExecContext(ctx, x.d.args(args)...)
}

func (x *sqlStmt) QueryContext(ctx context.Context, args ...any) (*sql.Rows, error) {
	return x.Stmt.QueryContext(ctx, x.d.args(args)...)
}

func (x *sqlStmt) QueryRowContext(ctx context.Context, args ...any) *sql.Row {
	return x.Stmt.QueryRowContext(ctx, x.d.args(args)...)
}
