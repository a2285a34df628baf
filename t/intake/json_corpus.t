# JSONTestSuite's parsing corpus POSTed raw to /ordersync/orders with a valid key, each file
# with its one exact answer:
# - n_ (not JSON): 400 malformed-json, or too-deep for the deeply nested ones; 413
#   body-too-large for the two files larger than OrderSyncMaxBody.
# - y_ (valid JSON): 422 invalid-order, since none of them is an order (a valid JSON text
#   that is not an object is a single-problem 422 too); the duplicated-key files are 400
#   malformed-json by policy (an order with two "qty" is ambiguous).
# - i_ (implementation-defined): each as listed in %I below, which documents what the hub
#   does: numbers out of any range are taken as JSON (422 here: not an order); every
#   surrogate escape that is not half of a pair (\uD800 alone or before anything but a low
#   surrogate, a low one alone), bytes that are not UTF-8, UTF-16 and a byte order mark are
#   refused as malformed (400); 500 nested arrays exceed OrderSyncMaxDepth (400 too-deep).
#   A change of any of these answers shows here.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use LWP::UserAgent ();
use HTTP::Request ();
use File::Spec ();
use lib 't/lib';
use OSTest;

my $top = Apache::Test::vars()->{top_dir};
my $dir = $ENV{OS_JSON_CORPUS}
    || File::Spec->catdir($top, '..', 'shared', 'corpora', 'JSONTestSuite', 'test_parsing');
opendir(my $dh, $dir) or die "$dir: $!";
my @files = sort grep { /^[nyi]_.*\.json$/ } readdir $dh;
closedir $dh;

my $MAX_BODY = 65536;
my %I = (
    (map { ($_ => [422, 'invalid-order']) } qw(
        i_number_double_huge_neg_exp.json i_number_huge_exp.json i_number_neg_int_huge_exp.json
        i_number_pos_double_huge_exp.json i_number_real_neg_overflow.json
        i_number_real_pos_overflow.json i_number_real_underflow.json
        i_number_too_big_neg_int.json i_number_too_big_pos_int.json
        i_number_very_big_negative_int.json)),
    (map { ($_ => [400, 'malformed-json']) } qw(
        i_string_1st_surrogate_but_2nd_missing.json i_string_1st_valid_surrogate_2nd_invalid.json
        i_string_incomplete_surrogate_and_escape_valid.json
        i_string_incomplete_surrogates_escape_valid.json i_string_invalid_lonely_surrogate.json
        i_string_invalid_surrogate.json
        i_object_key_lone_2nd_surrogate.json
        i_string_UTF-16LE_with_BOM.json
        i_string_UTF-8_invalid_sequence.json i_string_UTF8_surrogate_U+D800.json
        i_string_incomplete_surrogate_pair.json
        i_string_invalid_utf-8.json i_string_inverted_surrogates_U+1D11E.json
        i_string_iso_latin_1.json i_string_lone_second_surrogate.json
        i_string_lone_utf8_continuation_byte.json i_string_not_in_unicode_range.json
        i_string_overlong_sequence_2_bytes.json i_string_overlong_sequence_6_bytes.json
        i_string_overlong_sequence_6_bytes_null.json i_string_truncated-utf-8.json
        i_string_utf16BE_no_BOM.json i_string_utf16LE_no_BOM.json
        i_structure_UTF-8_BOM_empty_object.json)),
    'i_structure_500_nested_arrays.json' => [400, 'too-deep'],
);

plan tests => @files + 2;

my $url = 'http://' . Apache::TestRequest::hostport() . hub_url('/orders');
my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 30);
my @auth = (Authorization => 'Bearer ' . key('demo'), 'Content-Type' => 'application/json');
my $crashes = 0;

sub post_file {
    my $f = shift;
    my $body = read_file("$dir/$f");
    my $res = $ua->request(HTTP::Request->new(POST => $url, [@auth], $body));
    # A crashed child shows as LWP's own 500; its log line is announced only if it happened.
    if (($res->header('Client-Warning') // '') eq 'Internal response') {
        $crashes++;
        diag("$f: no answer from the server: " . $res->status_line);
    }
    return ($res, length $body);
}

sub type_of { my $d = decode($_[0]) || {}; return $d->{type} // '' }

# the one answer each file must get: [status, problem type]
sub expected {
    my ($f, $len) = @_;
    return [413, 'body-too-large'] if $len > $MAX_BODY;
    if ($f =~ /^n_/) {
        return [400, 'too-deep'] if $f =~ /^n_structure_(?:100000_opening_arrays|open_array_object)/;
        return [400, 'malformed-json'];
    }
    return [400, 'malformed-json'] if $f =~ /^y_object_duplicated_key/;
    return [422, 'invalid-order'] if $f =~ /^y_/;
    return $I{$f} || [0, "i_ file not documented in json_corpus.t's %I"];
}

for my $f (@files) {
    my ($res, $len) = post_file($f);
    my ($code, $slug) = @{ expected($f, $len) };
    my $got = $res->code . ' ' . type_of($res);
    is($got, "$code urn:ordersync:problem:$slug", "$f: $code $slug")
        or diag("$f: " . substr($res->content, 0, 160));
}

is($crashes, 0, 'no request of the corpus went unanswered (no crashed child)');
my $res = json_req('GET', '/orders/demo/json-corpus-none', undef, 'demo');
is($res->code, 404, 'the hub still answers after the corpus');
