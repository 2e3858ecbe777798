// generate/json_schema: compiles a JSON Schema into a Grammar (generate/grammar.h) whose
// sentences are JSON texts valid against the schema, for constrained generation.
//
// The grammar accepts compact JSON: no whitespace anywhere, object members in schema order
// (the order of "properties"; required ones mandatory, optional ones may be left out),
// then, when additional properties are allowed, extra members whose keys are plain ASCII
// (no escapes) and differ from the declared ones. Integers are written without fraction or
// exponent, strings are UTF-8 with JSON escapes (no \u surrogates).
//
// Supported keywords: type (one or a list), properties, required, additionalProperties
// (false, true or a schema), enum, const, items (a schema, or a list with additionalItems),
// prefixItems, minItems, maxItems, minLength, maxLength, format "date" and "date-time",
// minimum, maximum, exclusiveMinimum, exclusiveMaximum (draft 4 booleans or draft 6+
// numbers), $ref to a JSON pointer within the schema ("#", "#/definitions/x",
// "#/$defs/x", ...), definitions/$defs, anyOf, oneOf (when its branches are provably
// disjoint: by type, by literal values, or by a required property pinned to different
// const/enum values; else an error), allOf with one element, and the annotations title,
// description, default, examples, $comment, $schema, $id, readOnly, writeOnly, deprecated.
// Sound, not complete, for number ranges: a bounded "number" accepts integers in range
// and decimals whose integer part keeps the whole interval in range.
//
// Anything else (pattern, patternProperties, not, if/then/else, dependencies, uniqueItems,
// multipleOf, contains, propertyNames, min/maxProperties, other formats, $ref with sibling
// constraints, ...) is an error, never ignored. Errors are ragd::Error(InvalidArgument)
// with a message naming the keyword and the JSON pointer where it is.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "generate/grammar.h"

namespace ragd {

struct SchemaOptions {
    // When a schema says nothing about additionalProperties, JSON Schema allows extra
    // members. Generation leaves them out (false: a subset of valid outputs); set true to
    // accept them (the test suite).
    bool allow_unlisted_properties = false;
    int max_depth = 32;                 // nesting of schema objects
    size_t max_schema_bytes = 1 << 20;  // serialized size
    int max_rules = 20000;              // grammar rules
    int max_repeat = 4096;              // maxLength/maxItems/minItems beyond this: error
};

std::shared_ptr<Grammar> compile_json_schema(const nlohmann::ordered_json& schema,
                                             const SchemaOptions& options = {});

// Any JSON object (OpenAI's response_format {"type": "json_object"}).
std::shared_ptr<Grammar> json_object_grammar();

}  // namespace ragd
