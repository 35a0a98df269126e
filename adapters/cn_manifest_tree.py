"""The element table of the China customs manifest messages (舱单, docs/eport-research.md §4):
`Head` and the `Declaration` trees of the original manifests (MT1101 sea, MT1201 air, MT1401
road), the pre-manifests (MT2101, MT2201, MT2401) and the arrival reports (MT3101, MT3201),
on the WCO data model. One table serves every type: what differs between types is which
elements are required, and, for a few data, the spelling the road templates use (the second
of a node's paths) against the sea samples' (the first).

No XSD is public (research §8): the lengths below are ours, generous bounds on the WCO
formats (codes and ids an..35, names and texts an..512)."""

from __future__ import annotations

from .xml_tree import ALWAYS, DECIMAL, TIME, Attr, Node, group, leaf

SEA_TYPES = frozenset({"MT1101", "MT2101", "MT3101"})
AIR_TYPES = frozenset({"MT1201", "MT2201", "MT3201"})
ROAD_TYPES = frozenset({"MT1401", "MT2401"})
MESSAGE_TYPES = SEA_TYPES | AIR_TYPES | ROAD_TYPES
FILED = frozenset({"MT1101", "MT1201", "MT1401", "MT2101", "MT2201", "MT2401"})
WITH_JOURNEY = FILED - ROAD_TYPES  # sea voyage number, air flight number/date
SEA_FILED = FILED & SEA_TYPES

NAME, TEXT = 512, 512

UNIT = Attr("unit_code", ("unitCode",), "Unit of measure, UN/ECE Recommendation 20 (KGM, MTQ) "
            "or package type (Rec. 21), when given.")
CURRENCY = Attr("currency", ("CurrencyTypeCode", "currencyID"),
                "ISO 4217 currency code; read from @CurrencyTypeCode (sea samples) or "
                "@currencyID (WCO, road templates).")
AGENCY = Attr("agency_code", ("AgencyCode",), "Code of the agency that affixed the seal.")


def _measure(field_name: str, path: str, doc: str) -> Node:
    return leaf(field_name, path, doc, kind=DECIMAL, attr=UNIT, record="CustomsManifestMeasure")


def _time(field_name: str, path: str, doc: str, **options: object) -> Node:
    return leaf(field_name, path, doc, kind=TIME, **options)


def _communications(doc: str) -> Node:
    return group("communications", "Communication", "CustomsManifestCommunication", doc, (
        leaf("id", "ID", "Telephone number, e-mail address or fax number.", max_length=256,
            required=ALWAYS, personal=True),
        leaf("type_id", "TypeID", "TE telephone, EM e-mail, FX fax (UN/EDIFACT 3155)."),
    ), repeats=True)


ADDRESS = group("address", "Address", "CustomsManifestAddress", "Address, when given.", (
    leaf("line", "Line", "Street and number (详细地址).", max_length=TEXT),
    leaf("city_name", "CityName", "City (城市).", max_length=NAME),
    leaf("country_sub_entity_id", "CountrySubEntityID", "Province or state code."),
    leaf("country_sub_entity_name", "CountrySubEntityName", "Province or state.", max_length=NAME),
    leaf("postcode_id", "PostcodeID", "Postcode."),
    leaf("country_code", "CountryCode", "ISO 3166-1 alpha-2 country code."),
))

CONTACT = group("contact", "Contact", "CustomsManifestContact", "Contact person, when given.", (
    leaf("name", "Name", "Name of the contact person.", max_length=NAME, personal=True),
    _communications("The contact's telephone, e-mail or fax, in document order."),
))


def _party(field_name: str, path: str, doc: str) -> Node:
    return group(field_name, path, "CustomsManifestParty", doc, (
        leaf("id", "ID", "Party code, often <qualifier>+<code> (e.g. USCI+…, ZZZ+…)."),
        leaf("name", "Name", "Name.", max_length=NAME),
        ADDRESS,
        _communications("Telephone, e-mail or fax of the party, in document order."),
        CONTACT,
        leaf("aeo", "AEO", "AEO (authorised economic operator) code of the party."),
    ))


def _place(field_name: str, path: str, doc: str) -> Node:
    return group(field_name, path, "CustomsManifestPlace", doc, (
        leaf("id", "ID", "Location code (UN/LOCODE, or customs form such as AAE/4201)."),
        leaf("name", "Name", "Location name.", max_length=NAME),
    ))


LOADING = group("loading_location", "LoadingLocation", "CustomsManifestLoadingLocation",
                "Place of loading (装货地), when given.", (
    leaf("id", "ID", "Code of the place of loading."),
    _time("loading_date", "LoadingDate", "Loading date (装货日期) as LoadingDate."),
    _time("loading_date_time", "LoadingDateTime", "Loading date and time as LoadingDateTime."),
))

UNLOADING = group("unloading_location", "UnloadingLocation", "CustomsManifestUnloadingLocation",
                  "Place of unloading (卸货地), when given.", (
    leaf("id", "ID", "Code of the place of unloading."),
    _time("arrival_date", "ArrivalDate", "Arrival date (到达卸货地日期) as ArrivalDate."),
    _time("arrival_date_time", "ArrivalDateTime", "Arrival date as ArrivalDateTime."),
))

CONTRACT_DOCUMENT = group(
    "transport_contract_document", "TransportContractDocument",
    "CustomsManifestTransportContract",
    "The transport contract (总提(运)单): bill of lading, air waybill or road waybill.", (
        leaf("id", "ID", "Master transport document number (总提(运)单号): B/L, AWB or road "
            "waybill; with the house number unique within the message.", required=ALWAYS),
        leaf("change_reason_code", "ChangeReasonCode", "Reason of a change (更改原因代码)."),
        leaf("condition_code", "ConditionCode", "Terms of carriage (运输条款代码)."),
        leaf("consolidator_id", "Consolidator/ID", "Consolidator (装箱人) code, pre-manifests."),
        leaf("deconsolidator_id", "Deconsolidator/ID",
            "Deconsolidator (拆箱人) code, original manifests."),
    ), required=ALWAYS)

EQUIPMENT = group("transport_equipment", "TransportEquipment", "CustomsManifestEquipment",
                  "Containers and other equipment (集装箱), in document order.", (
    leaf("id", "EquipmentIdentification/ID|ID", "Equipment (container) number.",
        required=ALWAYS),
    leaf("characteristic_code", "CharacteristicCode", "Size and type code (ISO 6346)."),
    leaf("fullness_code", "FullnessCode", "Full or empty code."),
    leaf("seals", "SealID", "Seal numbers, in document order.", repeats=True, attr=AGENCY,
         record="CustomsManifestSeal"),
), repeats=True)

ITEM = group("items", "ConsignmentItem", "CustomsManifestItem",
             "Goods items (商品项), in document order, numbered 1, 2, 3 and on.", (
    leaf("sequence_numeric", "SequenceNumeric", "Item sequence number (商品项序号).",
        required=ALWAYS),
    group("commodity", "Commodity", "CustomsManifestCommodity", "What the goods are.", (
        leaf("cargo_description", "CargoDescription", "Brief cargo description (货物简要描述).",
             max_length=TEXT),
        leaf("description", "Description", "Further description.", max_length=TEXT),
        leaf("classification_id", "Classification/ID", "HS code (商品编码)."),
    )),
    _measure("gross_mass", "GoodsMeasure/GrossMassMeasure", "Gross mass of the item (毛重)."),
    _measure("package_quantity", "Packaging/QuantityQuantity",
             "Number of packages, the unit being the package type."),
), repeats=True)

CONSIGNMENT = group("consignments", "Consignment", "CustomsManifestConsignment",
                    "The consignments (提(运)单), in document order; at least one.", (
    CONTRACT_DOCUMENT,
    leaf("associated_transport_document_id", "AssociatedTransportDocument/ID",
        "House transport document number (分提(运)单号), when there is one."),
    _measure("gross_volume", "GrossVolumeMeasure", "Gross volume (货物体积)."),
    _measure("total_package_quantity", "TotalPackageQuantity", "Total number of packages."),
    _measure("total_gross_mass", "TotalGrossMassMeasure", "Total gross mass (货物总毛重)."),
    leaf("value_amount", "ValueAmount", "Value of the goods (货物价值).", kind=DECIMAL,
         attr=CURRENCY, record="CustomsManifestAmount"),
    LOADING,
    UNLOADING,
    _place("goods_receipt_place", "GoodsReceiptPlace", "Place of receipt of the goods (收货地)."),
    leaf("transhipment_location_id", "TranshipmentLocation/ID", "Place of transhipment (中转地)."),
    leaf("transit_destination_id", "TransitDestination/ID", "Transit destination (境内目的地)."),
    leaf("transit_departure_id", "TransitDeparture/ID", "Transit departure (境内启运地)."),
    leaf("goods_consigned_place_id", "GoodsConsignedPlace/ID", "Place goods consigned (发货地)."),
    leaf("freight_payment_method_code", "FreightPayment/MethodCode|Freight/PaymentMethodCode",
        "Freight payment method (运费支付方法), e.g. FF, 1, 2."),
    group("packaging", "ConsignmentPackaging", "CustomsManifestPackaging",
          "Packages of the consignment (包装).", (
        leaf("quantity", "QuantityQuantity", "Number of packages (件数).", kind=DECIMAL),
        leaf("type_code", "TypeCode", "Package type, UN/ECE Recommendation 21 (包装种类)."),
    )),
    leaf("transport_split_indicator", "TransportSplitIndicator",
        "Split shipment flag (分批发货标志)."),
    leaf("routing_country_codes", "BorderTransportMeans/Itinerary/RoutingCountryCode",
        "Countries the goods pass through (途经国家), in order.", repeats=True),
    leaf("government_procedure_code", "GovernmentProcedure/CurrentCode",
        "Customs procedure code (e.g. RD06)."),
    _measure("government_agency_gross_mass",
             "GovernmentAgencyGoodsItem/GoodsMeasure/GrossMassMeasure",
             "Gross mass declared for the government agency's goods item."),
    group("previous_customs_document", "PreviousCustomsDocument", "CustomsManifestDocumentRef",
          "A previous customs document (前一海关单证).", (
        leaf("id", "ID", "Document number."),
        leaf("type_code", "TypeCode", "Document type code."),
    )),
    group("delivery_destination", "DeliveryDestination", "CustomsManifestAddress",
          "Delivery destination address (交货地).", ADDRESS.children),
    leaf("intermediate_carrier_id", "IntermediateCarrier/ID", "Intermediate carrier (中转承运人)."),
    _party("consignee", "Consignee", "Consignee (收货人)."),
    _party("consignor", "Consignor", "Consignor (发货人)."),
    _party("notify_party", "NotifyParty", "Notify party (通知人)."),
    group("undg_contact", "UNDGContact", "CustomsManifestContact",
          "Dangerous goods contact (危险品联系人): present when the consignment carries "
          "dangerous goods (UNDG).", CONTACT.children),
    EQUIPMENT,
    ITEM,
), repeats=True, required=ALWAYS)

TRANSPORT_MEANS = group(
    "transport_means", "BorderTransportMeans", "CustomsManifestTransportMeans",
    "The border transport means (运输工具): vessel, aircraft or vehicle.", (
        leaf("journey_id", "JourneyID", "Voyage number (sea) or flight number + '/' + CCYYMMDD "
            "(air) (航次航班编号).", required=WITH_JOURNEY),
        leaf("type_code", "TypeCode", "Border transport mode, table CN012 (3 road, 4 air; 1 "
            "sea by UN Rec. 19).", required=FILED),
        leaf("id", "ID", "Means id: IMO number (sea), aircraft registration (air), vehicle "
            "plate (road).", required=SEA_FILED),
        leaf("name", "Name", "Vessel name, airline or vehicle name.", max_length=NAME),
        leaf("first_arrival_location_id", "FirstArrivalLocationID",
            "First place of arrival in the customs territory."),
        _time("arrival_date_time", "ArrivalDateTime", "Date and time of arrival."),
        _time("departure_date_time", "DepartureDateTime", "Date and time of departure."),
    ), required=FILED)

DECLARATION = (
    leaf("declaration_office_id", "DeclarationOfficeID", "Customs office (关区) of the filing."),
    leaf("id", "ID", "Manifest id given by the filer."),
    leaf("representative_person_name", "RepresentativePerson/Name",
        "Manifest transmitter (舱单传输人名称).", max_length=NAME),
    leaf("exit_customs_office_id", "ExitCustomsOffice/ID", "Customs office of departure."),
    leaf("agent_id", "Agent/ID", "Transport means agent (运输工具代理企业代码)."),
    leaf("carrier_id", "Carrier/ID", "Carrier code (承运人代码).", required=FILED),
    TRANSPORT_MEANS,
    LOADING,
    UNLOADING,
    CONSIGNMENT,
    leaf("additional_information", "AdditionalInformation/Content", "Remarks (备注).",
         max_length=TEXT),
)

HEAD = (
    leaf("message_id", "MessageID", "Message id (报文编号), unique per type and sender, e.g. "
        "CN_<type>_1p0_<sender>_<time>.", max_length=100, required=ALWAYS),
    leaf("function_code", "FunctionCode", "Function: 9 original, 2 add, 3 delete, 5 change "
        "(报文功能代码).", max_length=3, required=ALWAYS),
    leaf("message_type", "MessageType", "Message type, e.g. MT2101 (the same as the "
        "namespace's), or the UN/EDIFACT message type CUSCAR.", max_length=10, required=ALWAYS),
    leaf("sender_id", "SenderID", "Sender as written: the enterprise code, possibly followed "
        "by _-separated suffixes (DXP ids).", max_length=100, required=ALWAYS),
    leaf("receiver_id", "ReceiverID", "Receiver: customs district code or EPORT.",
        required=ALWAYS),
    _time("send_time", "SendTime", "When the message was sent (yyyyMMddHHmmssSSS).",
          required=ALWAYS),
    leaf("version", "Version", "Version of the message format, e.g. 1.0; for UN/EDIFACT the "
        "message identifier after the type (D:95B:UN:LOT10).", max_length=10, required=ALWAYS),
)

MANIFEST = (
    group("head", "Head", "CustomsManifestHead", "The message head (报文头).", HEAD,
          required=ALWAYS),
    group("declaration", "Declaration", "CustomsManifestDeclaration",
          "The declaration (报文体).", DECLARATION, required=ALWAYS),
)
