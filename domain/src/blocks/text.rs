//! Text-processing blocks (`backend/blocks/text.py` and the word counter).

use serde_json::json;

use super::schema::{any, boolean, dict, integer, list, string, Schema};
use super::{Block, TEXT};

pub(super) fn blocks() -> Vec<Block> {
    vec![
        match_text_pattern(),
        extract_text_information(),
        fill_text_template(),
        combine_texts(),
        text_split(),
        text_replace(),
        word_character_count(),
    ]
}

fn match_text_pattern() -> Block {
    let input = Schema::input()
        .field("text", any().desc("Text to match"))
        .field("match", string().desc("Pattern (Regex) to match"))
        .field("data", any().desc("Data to be forwarded to output"))
        .field("case_sensitive", boolean().desc("Case sensitive match").default(json!(true)))
        .field("dot_all", boolean().desc("Dot matches all").default(json!(true)));
    let output = Schema::output()
        .field("positive", any().desc("Output data if match is found"))
        .field("negative", any().desc("Output data if match is not found"));
    Block::new(
        "3060088f-6ed9-4928-9ba7-9c92823a7ccd",
        "MatchTextPatternBlock",
        "Matches text against a regex pattern and forwards data to positive or negative output based on the match.",
        &[TEXT],
        input,
        output,
    )
}

fn extract_text_information() -> Block {
    let input = Schema::input()
        .field("text", any().desc("Text to parse"))
        .field("pattern", string().desc("Pattern (Regex) to parse"))
        .field("group", integer().desc("Group number to extract").default(json!(0)))
        .field("case_sensitive", boolean().desc("Case sensitive match").default(json!(true)))
        .field("dot_all", boolean().desc("Dot matches all").default(json!(true)))
        .field("find_all", boolean().desc("Find all matches").default(json!(false)));
    let output = Schema::output()
        .field("positive", string().desc("Extracted text"))
        .field("negative", string().desc("Original text"))
        .field("matched_results", list(json!({"type": "string"})).desc("List of matched results"))
        .field("matched_count", integer().desc("Number of matched results"));
    Block::new(
        "3146e4fe-2cdd-4f29-bd12-0c9d5bb4deb0",
        "ExtractTextInformationBlock",
        "This block extracts the text from the given text using the pattern (regex).",
        &[TEXT],
        input,
        output,
    )
}

fn fill_text_template() -> Block {
    let input = Schema::input()
        .field(
            "values",
            dict().desc(
                "Values (dict) to be used in format. These values can be used by putting them in \
                 double curly braces in the format template. e.g. {{value_name}}.",
            ),
        )
        .field("format", string().desc("Template to format the text using `values`. Use Jinja2 syntax."))
        .field(
            "escape_html",
            boolean()
                .desc(
                    "Whether to escape special characters in the inserted values to be HTML-safe. \
                     Enable for HTML output, disable for plain text.",
                )
                .default(json!(false))
                .advanced(true),
        );
    Block::new(
        "db7d8f02-2f44-4c55-ab7a-eae0941f0c30",
        "FillTextTemplateBlock",
        "This block formats the given texts using the format template.",
        &[TEXT],
        input,
        Schema::output().field("output", string().desc("Formatted text")),
    )
}

fn combine_texts() -> Block {
    let input = Schema::input()
        .field("input", list(json!({"type": "string"})).desc("text input to combine"))
        .field("delimiter", string().desc("Delimiter to combine texts").default(json!("")));
    Block::new(
        "e30a4d42-7b7d-4e6a-b36e-1f9b8e3b7d85",
        "CombineTextsBlock",
        "This block combines multiple input texts into a single output text.",
        &[TEXT],
        input,
        Schema::output().field("output", string().desc("Combined text")),
    )
}

fn text_split() -> Block {
    let input = Schema::input()
        .field("text", string().desc("The text to split."))
        .field("delimiter", string().desc("The delimiter to split the text by."))
        .field("strip", boolean().desc("Whether to strip the text.").default(json!(true)));
    Block::new(
        "d5ea33c8-a575-477a-b42f-2fe3be5055ec",
        "TextSplitBlock",
        "This block is used to split a text into a list of strings.",
        &[TEXT],
        input,
        Schema::output().field("texts", list(json!({"type": "string"})).desc("The text split into a list of strings.")),
    )
}

fn text_replace() -> Block {
    let input = Schema::input()
        .field("text", string().desc("The text to replace."))
        .field("old", string().desc("The old text to replace."))
        .field("new", string().desc("The new text to replace with."));
    Block::new(
        "7e7c87ab-3469-4bcc-9abe-67705091b713",
        "TextReplaceBlock",
        "This block is used to replace a text with a new text.",
        &[TEXT],
        input,
        Schema::output().field("output", string().desc("The text with the replaced text.")),
    )
}

fn word_character_count() -> Block {
    let input = Schema::input().field(
        "text",
        string().desc("Input text to count words and characters").placeholder("Enter your text here").advanced(false),
    );
    // The block redeclares `error` without a default, which makes it required.
    let output = Schema::output()
        .field("word_count", integer().desc("Number of words in the input text"))
        .field("character_count", integer().desc("Number of characters in the input text"))
        .field("error", string().desc("Error message if the counting operation failed"));
    Block::new(
        "ab2a782d-22cf-4587-8a70-55b59b3f9f90",
        "WordCharacterCountBlock",
        "Counts the number of words and characters in a given text.",
        &[TEXT],
        input,
        output,
    )
}
