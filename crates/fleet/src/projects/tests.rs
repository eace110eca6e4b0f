use super::*;

fn parse_str(text: &str) -> Result<Vec<ProjectRow>, ProjectsCsvError> {
    parse(Path::new("config/projects.csv"), text.as_bytes())
}

fn refusal(text: &str) -> String {
    parse_str(text).expect_err("the CSV must be refused").to_string()
}

const EXAMPLE: &str = "Project,Servers,MasterSpec,WebSpec\n\
                       hostomatic,3,s-2vcpu-4gb,s-2vcpu-4gb\n\
                       digitalpixo,1,s-1vcpu-1gb,s-1vcpu-1gb\n";

#[test]
fn the_example_parses_with_line_numbers() {
    let rows = parse_str(EXAMPLE).expect("valid");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].name, "hostomatic");
    assert_eq!(rows[0].servers, 3);
    assert_eq!(rows[0].line, 2);
    assert_eq!(rows[1].web_spec, "s-1vcpu-1gb");
    assert_eq!(rows[1].line, 3);
}

#[test]
fn a_spreadsheet_export_parses() {
    let text = "\u{feff}Project , Servers,MasterSpec ,WebSpec\r\n\r\n  hostomatic , 3 , s-2vcpu-4gb,s-2vcpu-4gb \r\n,,,\r\n\"digitalpixo\",1,s-1vcpu-1gb,s-1vcpu-1gb\r\n";
    let rows = parse_str(text).expect("valid");
    assert_eq!(
        rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["hostomatic", "digitalpixo"]
    );
    assert_eq!(rows[0].line, 3);
    assert_eq!(rows[1].line, 5);
}

#[test]
fn columns_may_come_in_any_order_and_case() {
    let rows = parse_str("webspec,PROJECT,servers,masterspec\ns-1vcpu-1gb,app,2,s-1vcpu-2gb\n")
        .expect("valid");
    assert_eq!(rows[0].name, "app");
    assert_eq!(rows[0].master_spec, "s-1vcpu-2gb");
    assert_eq!(rows[0].web_spec, "s-1vcpu-1gb");
}

#[test]
fn a_header_alone_asks_for_no_projects() {
    assert!(parse_str("Project,Servers,MasterSpec,WebSpec\n").expect("valid").is_empty());
}

#[test]
fn negative_servers_names_line_and_field() {
    let text = "Project,Servers,MasterSpec,WebSpec\nhostomatic,-1,s-2vcpu-4gb,s-2vcpu-4gb\n";
    assert_eq!(
        refusal(text),
        "config/projects.csv, line 2, field Servers: must be a positive whole number, got \"-1\""
    );
}

#[test]
fn servers_must_be_a_positive_whole_number() {
    for bad in ["0", "2.5", "three", "", "1e3"] {
        let text =
            format!("Project,Servers,MasterSpec,WebSpec\napp,{bad},s-1vcpu-1gb,s-1vcpu-1gb\n");
        assert!(refusal(&text).contains("field Servers: must be a positive whole number"), "{bad}");
    }
}

#[test]
fn absurd_server_counts_are_refused() {
    let text = "Project,Servers,MasterSpec,WebSpec\napp,5000,s-1vcpu-1gb,s-1vcpu-1gb\n";
    assert!(
        refusal(text)
            .ends_with("field Servers: 5000 is more than the 100 servers a project may ask for")
    );
    let huge =
        "Project,Servers,MasterSpec,WebSpec\napp,99999999999999999999999,s-1vcpu-1gb,s-1vcpu-1gb\n";
    assert!(refusal(huge).contains("field Servers"));
}

#[test]
fn duplicate_projects_are_found_without_case() {
    let text = "Project,Servers,MasterSpec,WebSpec\nhostomatic,1,s-1vcpu-1gb,s-1vcpu-1gb\nHOSTOMATIC,2,s-1vcpu-1gb,s-1vcpu-1gb\n";
    assert_eq!(
        refusal(text),
        "config/projects.csv, line 3, field Project: project \"HOSTOMATIC\" is already defined on \
         line 2 (names are compared without case)"
    );
}

#[test]
fn missing_and_unknown_columns_are_named() {
    assert!(
        refusal("Project,Servers,MasterSpec\napp,1,s-1vcpu-1gb\n")
            .starts_with("config/projects.csv, line 1: the header has no column \"WebSpec\"")
    );
    assert!(
        refusal("Project,Severs,MasterSpec,WebSpec\n").starts_with(
            "config/projects.csv, line 1: the header has an unknown column \"Severs\""
        )
    );
    assert!(
        refusal("Project,Project,MasterSpec,WebSpec\n").contains("names column \"Project\" twice")
    );
}

#[test]
fn an_empty_file_has_no_header() {
    assert!(refusal("").contains("has no header"));
    assert!(refusal("\n\n").contains("has no header"));
}

#[test]
fn short_rows_are_refused() {
    let text = "Project,Servers,MasterSpec,WebSpec\napp,1,s-1vcpu-1gb\n";
    assert_eq!(refusal(text), "config/projects.csv, line 2: has 3 fields where the header has 4");
}

#[test]
fn an_unterminated_quote_names_its_line() {
    let text = "Project,Servers,MasterSpec,WebSpec\nhostomatic,1,s-1vcpu-1gb,s-1vcpu-1gb\n\"broken,1,s-1vcpu-1gb,s-1vcpu-1gb\nother,1,s-1vcpu-1gb,s-1vcpu-1gb\n";
    assert_eq!(
        refusal(text),
        "config/projects.csv, line 3: a quoted field opened here is never closed"
    );
}

#[test]
fn escaped_quotes_inside_a_quoted_field_are_not_a_closing_quote() {
    assert!(quoting_problem("\"a\"\"b\",c\n").is_none());
    assert!(matches!(quoting_problem("x,\"a\"\"b\n"), Some((1, CsvProblem::UnterminatedQuote))));
}

#[test]
fn text_after_a_closing_quote_is_refused() {
    let text = "Project,Servers,MasterSpec,WebSpec\n\"hostomatic\"x,1,s-1vcpu-1gb,s-1vcpu-1gb\n";
    assert_eq!(
        refusal(text),
        "config/projects.csv, line 2: text follows a closing quote; quote the whole field, as in \"a \"\"b\"\" c\""
    );
    assert!(
        parse_str(
            "Project,Servers,MasterSpec,WebSpec\n\"hostomatic\" ,1,s-1vcpu-1gb,s-1vcpu-1gb\n"
        )
        .is_ok()
    );
}

#[test]
fn a_repeated_header_is_named() {
    let text = "Project,Servers,MasterSpec,WebSpec\nhostomatic,1,s-1vcpu-1gb,s-1vcpu-1gb\nProject,Servers,MasterSpec,WebSpec\n";
    assert_eq!(
        refusal(text),
        "config/projects.csv, line 3: the header is repeated here; remove this line"
    );
}

#[test]
fn a_huge_number_is_quoted_as_written() {
    let text =
        "Project,Servers,MasterSpec,WebSpec\napp,99999999999999999999999,s-1vcpu-1gb,s-1vcpu-1gb\n";
    assert!(refusal(text).contains("99999999999999999999999 is more than the 100 servers"));
}

#[test]
fn scaling_keeps_a_byte_order_mark() {
    let text = "\u{feff}Project,Servers,MasterSpec,WebSpec\nhostomatic,3,s-2vcpu-4gb,s-2vcpu-4gb\n";
    let scaled = with_servers(Path::new("p.csv"), text.as_bytes(), "hostomatic", 4)
        .expect("valid")
        .expect("row");
    assert_eq!(
        scaled,
        "\u{feff}Project,Servers,MasterSpec,WebSpec\nhostomatic,4,s-2vcpu-4gb,s-2vcpu-4gb\n"
    );
}

#[test]
fn invalid_utf8_names_its_line() {
    let mut bytes = b"Project,Servers,MasterSpec,WebSpec\n".to_vec();
    bytes.extend_from_slice(b"caf\xe9,1,s-1vcpu-1gb,s-1vcpu-1gb\n");
    let err = parse(Path::new("config/projects.csv"), &bytes).expect_err("refused");
    assert_eq!(err.line, Some(2));
    assert!(err.to_string().contains("not valid UTF-8"));
}

#[test]
fn unknown_sizes_are_refused_with_a_suggestion() {
    let text = "Project,Servers,MasterSpec,WebSpec\napp,1,s-2vcpu-4g,s-1vcpu-1gb\n";
    assert_eq!(
        refusal(text),
        "config/projects.csv, line 2, field MasterSpec: \"s-2vcpu-4g\" is not a droplet size (did you mean \"s-2vcpu-4gb\"?)"
    );
    let web = "Project,Servers,MasterSpec,WebSpec\napp,1,s-1vcpu-1gb,huge\n";
    assert!(refusal(web).contains("field WebSpec: \"huge\" is not a droplet size"));
}

#[test]
fn unsafe_project_names_are_refused() {
    for bad in ["../etc", "my app", "my_app", "$(rm)", "9lives", "app-"] {
        let text =
            format!("Project,Servers,MasterSpec,WebSpec\n\"{bad}\",1,s-1vcpu-1gb,s-1vcpu-1gb\n");
        let message = refusal(&text);
        assert!(message.contains("line 2, field Project: project name"), "{bad}: {message}");
    }
}

#[test]
fn scaling_rewrites_one_field_and_keeps_every_other_byte() {
    let text = "Project,Servers,MasterSpec,WebSpec\r\nhostomatic , 3 ,s-2vcpu-4gb,s-2vcpu-4gb\r\ndigitalpixo, 1,s-1vcpu-1gb,s-1vcpu-1gb\r\n";
    let path = Path::new("config/projects.csv");
    let scaled =
        with_servers(path, text.as_bytes(), "hostomatic", 5).expect("valid").expect("has the row");
    assert_eq!(
        scaled,
        "Project,Servers,MasterSpec,WebSpec\r\nhostomatic,5,s-2vcpu-4gb,s-2vcpu-4gb\r\ndigitalpixo, 1,s-1vcpu-1gb,s-1vcpu-1gb\r\n"
    );
    assert_eq!(with_servers(path, text.as_bytes(), "nothere", 5).expect("valid"), None);
}
